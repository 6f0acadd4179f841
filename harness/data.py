"""Where datasets live, the check → download → re-check cycle, and the base class dataset plugins share.

The data directory is, in order: ``--data-dir``, the ``HARNESS_DATA_DIR`` environment variable,
``$XDG_CACHE_HOME/harness/data`` (``~/.cache/harness/data``). Each dataset keeps its canonical file
names in a folder of its own there, so a copy of the canonical files can be used in place.
A dataset plugin subclasses :class:`FileDataset` (as the built-ins do) or writes its own
``fetch``/``load`` around :func:`ensure`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.errors import UsageError
from harness.types import Dataset, DatasetSpec

log = logging.getLogger(__name__)

DATA_DIR_ENV = "HARNESS_DATA_DIR"
CACHE_DIR_ENV = "HARNESS_CACHE_DIR"


class DataError(UsageError):
    """A dataset file is missing, truncated or corrupt; the message says which and how to fix it."""


def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness"


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else _xdg_cache() / "data"


def resolve_data_dir(given: str | None = None) -> Path:
    """The data directory: ``given`` (``--data-dir``, the config's ``data_dir``), else the default."""
    return Path(given).expanduser() if given else default_data_dir()


def default_cache_dir() -> Path:
    """Where methods keep expensive, content-keyed stages (pretrained autoencoders, ...)."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else _xdg_cache() / "cache"


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Resource:
    """One canonical file of a dataset: where it goes, what it must hash to, where to get it.

    ``sha256`` lists every accepted digest: more than one only where a byte-different copy with an
    identical payload is in circulation (said next to the resource).
    """

    path: str
    """Relative to the data directory, e.g. ``"mnist/train-images-idx3-ubyte.gz"``."""
    sha256: tuple[str, ...]
    size: int | None = None
    """Expected bytes, checked before hashing so a truncated file gets its own message."""
    urls: tuple[str, ...] = ()
    archive: str = ""
    """Where the file has no URL of its own: the archive the dataset's ``fetch`` extracts it from."""


def _fix_hint(dataset: str, resource: Resource, root: Path) -> str:
    how = (
        f"run `harness data --download {dataset}` on a machine with a network"
        if resource.urls or resource.archive
        else "download it by hand"
    )
    return (
        f"{how}, or point --data-dir (or ${DATA_DIR_ENV}) at a folder that holds "
        f"{resource.path} (now: {root})"
    )


def verify(dataset: str, resource: Resource, root: Path) -> Path:
    """Return the file's path if it is present with an accepted checksum, else raise DataError."""
    path = root / resource.path
    if not path.is_file():
        raise DataError(f"{dataset}: missing file {path}; {_fix_hint(dataset, resource, root)}")
    size = path.stat().st_size
    if resource.size is not None and size != resource.size:
        kind = "truncated" if size < resource.size else "has the wrong size"
        raise DataError(
            f"{dataset}: file {path} {kind}: {size:,} bytes, expected {resource.size:,}; "
            f"delete it and {_fix_hint(dataset, resource, root)}"
        )
    digest = sha256sum(path)
    if digest not in resource.sha256:
        raise DataError(
            f"{dataset}: file {path} is corrupt: SHA256 {digest}, expected {resource.sha256[0]}; "
            f"delete it and {_fix_hint(dataset, resource, root)}"
        )
    return path


def download(dataset: str, resource: Resource, root: Path) -> Path:
    """Fetch ``resource`` from its mirrors in turn into ``root`` and verify it; raise if all fail."""
    dest = root / resource.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in resource.urls:
        log.info("downloading %s from %s", resource.path, url)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            os.replace(tmp, dest)
            return verify(dataset, resource, root)
        except (OSError, DataError) as exc:
            failures.append(f"{url}: {exc}")
            log.warning("download of %s from %s failed: %s", resource.path, url, exc)
            Path(tmp).unlink(missing_ok=True)
            if dest.exists() and isinstance(exc, DataError):
                dest.unlink()
    raise DataError(
        f"{dataset}: could not download {resource.path} from any mirror (" + "; ".join(failures) + ")"
    )


def ensure(dataset: str, resources: Sequence[Resource], root: Path, download_missing: bool) -> list[Path]:
    """Verify every resource, downloading the missing ones first when allowed."""
    paths = []
    for resource in resources:
        if download_missing and not (root / resource.path).is_file() and resource.urls:
            paths.append(download(dataset, resource, root))
        else:
            paths.append(verify(dataset, resource, root))
    return paths


class FileDataset:
    """A dataset read from canonical files under ``<data dir>/<folder>/``: the idiom of every built-in.

    A subclass sets the class attributes, lists its files in :meth:`resources` and turns them into
    a :class:`~harness.types.Dataset` in :meth:`read`; :meth:`spec` is what its
    ``harness_datasets`` hook returns. Every load verifies the files first, and a read that does
    not give ``n_samples`` samples fails, so the spec cannot drift from the data.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    n_classes: ClassVar[int]
    image_shape: ClassVar[tuple[int, int, int]]
    """Native (H, W, C)."""
    n_samples: ClassVar[int]
    variant: ClassVar[str] = "train+test"

    def resources(self) -> list[Resource]:
        """The canonical files, in the order :meth:`read` receives their paths (may be empty)."""
        raise NotImplementedError

    def read(self, paths: list[Path]) -> Dataset:
        """The verified files (``resources()``' order) as images in [0, 1] and labels."""
        raise NotImplementedError

    def fetch(self, root: Path, download: bool = False) -> list[Path]:
        return ensure(self.name, self.resources(), Path(root), download)

    def load(self, root: Path) -> Dataset:
        dataset = self.read(self.fetch(root, download=False))
        if len(dataset.labels) != self.n_samples:
            raise ValueError(f"{self.name}: read {len(dataset.labels)} samples, expected {self.n_samples}")
        return dataset

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            n_classes=self.n_classes,
            image_shape=self.image_shape,
            n_samples=self.n_samples,
            fetch=self.fetch,
            load=self.load,
            description=self.description,
            variant=self.variant,
            checksums=tuple(r.sha256[0] for r in self.resources()),
        )
