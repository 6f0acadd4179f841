"""The pretrained-autoencoder cache: pretraining is most of DEC's cost, and it does not depend on
the clustering parameters, so a rerun (or a sibling method on the same data) reuses the weights.

The key is a hash of everything that determines the trained autoencoder: the data's content
(so a different resize filter or scaling is a different key), the dataset name, input size, N and
D, the seed, the network and every pretraining setting, and the Keras backend.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

KEY_VERSION = 2
"""Bump when the pretraining code changes what a key means (2: the batch order comes from
``clustering.batch_rng``, no longer from Keras ``fit``'s shuffle)."""


def ae_key(x: np.ndarray, fields: Mapping[str, Any]) -> str:
    """A short hex key of the data bytes and ``fields`` (JSON-serialisable)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"key_version": KEY_VERSION, **fields}, sort_keys=True).encode())
    digest.update(str(x.shape).encode() + str(x.dtype).encode())
    digest.update(np.ascontiguousarray(x).data)
    return digest.hexdigest()[:24]


class AECache:
    """Weights as ``<dir>/ae-<key>.weights.h5`` with a JSON sidecar (fields + loss history)."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = Path(directory)
        self.key = key
        self.weights = self.directory / f"ae-{key}.weights.h5"
        self.meta = self.directory / f"ae-{key}.json"

    def exists(self) -> bool:
        return self.weights.is_file() and self.meta.is_file()

    def load(self, model: Any) -> dict[str, Any]:
        model.load_weights(self.weights)
        return json.loads(self.meta.read_text())

    def save(self, model: Any, meta: Mapping[str, Any]) -> None:
        """Write atomically: concurrent jobs with the same key may race; the last complete file wins."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"ae-{self.key}.tmp{os.getpid()}.weights.h5"
        model.save_weights(tmp)
        os.replace(tmp, self.weights)
        tmp_meta = self.meta.with_suffix(f".tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(dict(meta), indent=1, sort_keys=True))
        os.replace(tmp_meta, self.meta)
