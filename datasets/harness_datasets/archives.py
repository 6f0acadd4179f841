"""Reading named members of a verified ``.tar.gz`` into memory, never extracting it to disk.

The archive is streamed once; only the regular-file members asked for are read (a link, a folder
or a device of that name is refused), so no member path is ever joined to a directory on disk and
nothing in the archive is executed. The unread members are skipped as the stream goes by.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from harness.data import DataError


def read_members(dataset: str, path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of each member in ``names`` (paths inside the archive); DataError if one is absent."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                if member.name not in wanted:
                    continue
                if not member.isfile():
                    raise DataError(
                        f"{dataset}: archive {path} member {member.name} is not a regular file; "
                        "delete the archive and download it again"
                    )
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file always has one
                found[member.name] = handle.read()
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise DataError(
            f"{dataset}: archive {path} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it and download it again"
        ) from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(
            f"{dataset}: archive {path} has no member {missing[0]}; delete it and download it again"
        )
    return found
