"""COIL-20, the "processed" set: 1,440 grayscale 128×128 PNGs, 20 objects × 72 poses.

Conversions: images ordered by object then pose (``obj1__0.png`` … ``obj20__71.png``, natural
order, not the file system's); label = object number − 1; uint8 pixels divided by 255. The
canonical download is a zip of the PNGs; there is no published checksum for it, so every PNG is
checked against ``coil-20-proc.sha256`` (shipped with this package) after extraction.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import urllib.request
import zipfile
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

from harness import Dataset
from harness.data import DataError, FileDataset, Resource, ensure

ZIP_URLS = ("https://www.cs.columbia.edu/CAVE/databases/SLAM_coil-20_coil-100/coil-20/coil-20-proc.zip",)
FOLDER = "coil20/coil-20-proc"
_NAME = re.compile(r"obj(\d+)__(\d+)\.png")


def _checksums() -> list[tuple[str, str]]:
    text = files("harness_datasets").joinpath("coil-20-proc.sha256").read_text()
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]  # (digest, name)


class COIL20(FileDataset):
    name = "coil20"
    description = "COIL-20 processed: 20 objects x 72 poses"
    variant = "all (processed)"
    n_classes = 20
    image_shape = (128, 128, 1)
    n_samples = 1_440

    def resources(self) -> list[Resource]:
        # PNG sizes are not part of the checksum list; the digest alone decides.
        return [Resource(f"{FOLDER}/{name}", (digest,), archive=ZIP_URLS[0]) for digest, name in _checksums()]

    def fetch(self, root: Path, download: bool = False) -> list[Path]:
        root = Path(root)
        if download and not all((root / r.path).is_file() for r in self.resources()):
            self._download_zip(root)
        return ensure(self.name, self.resources(), root, download_missing=False)

    def _download_zip(self, root: Path) -> None:
        target = root / FOLDER
        target.mkdir(parents=True, exist_ok=True)
        failures = []
        for url in ZIP_URLS:
            try:
                with tempfile.TemporaryFile() as tmp:
                    with urllib.request.urlopen(url, timeout=60) as response:
                        shutil.copyfileobj(response, tmp)
                    tmp.seek(0)
                    with zipfile.ZipFile(tmp) as archive:
                        for member in archive.namelist():
                            name = Path(member).name
                            if _NAME.fullmatch(name):
                                (target / name).write_bytes(archive.read(member))
                return
            except (OSError, zipfile.BadZipFile) as exc:
                failures.append(f"{url}: {exc}")
        raise DataError(f"coil20: could not download the PNGs ({'; '.join(failures)})")

    def read(self, paths: list[Path]) -> Dataset:
        # resources() lists the files in natural order: object, then pose.
        labels = np.array([int(_NAME.fullmatch(p.name).group(1)) - 1 for p in paths], dtype=np.int64)
        images = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.uint8) for p in paths])
        return Dataset(
            name=self.name,
            images=(images.astype(np.float32) / 255.0)[..., np.newaxis],
            labels=labels,
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="uint8/255",
        )
