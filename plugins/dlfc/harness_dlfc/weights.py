"""Autoencoder weight files: the authors' Keras .h5 files and the plugin's own .h5 files.

Both are read with plain HDF5 reads (h5py): nothing is unpickled and no code from a file runs.

* Keras 2 ``save_weights`` files (the DLFC authors' ``models/{mnist,fmnist}/*.h5``): the root's
  ``layer_names`` lists layers or nested models; each group's ``weight_names`` lists its arrays in
  order (``kernel:0``, ``bias:0``). The layers are matched to ours *in order*, since Keras numbers
  layer names per session (``conv2d_1`` in one file may be ``conv2d_3`` in another), and kernels
  are converted: Dense (in, out) → Linear (out, in); Conv2D (kh, kw, in, out) and Conv2DTranspose
  (kh, kw, out, in) → PyTorch (out|in, in|out, kh, kw) by the same permutation, no flipping.
* The plugin's own files (the pretrained-AE cache, or anything saved by :func:`save`): the root
  has ``format = "harness-dlfc"``, the architecture in attributes, and one dataset per entry of
  the PyTorch ``state_dict``.

A file that does not fit the model raises :class:`WeightsMismatchError` naming the file, the
layer and both shapes (or which layers are missing or extra).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

OWN_FORMAT = "harness-dlfc"


class WeightsMismatchError(ValueError):
    """A weights file that cannot be loaded into the chosen architecture."""


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The weight-carrying layers of ``model`` in Keras' order: encoder, attention, decoder."""
    found = [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)
    ]
    rank = {"attention": 1}
    decoder = ("expand", "deconv", "decoder")
    return sorted(
        found, key=lambda item: 2 if item[0].startswith(decoder) else rank.get(item[0].split(".")[0], 0)
    )


def _keras_arrays(fh: h5py.File) -> list[tuple[str, list[np.ndarray]]]:
    """[(layer path, [kernel, bias])] in file order, descending into nested models."""
    layers: list[tuple[str, list[np.ndarray]]] = []
    for group_name in (n.decode() if isinstance(n, bytes) else n for n in fh.attrs["layer_names"]):
        group = fh[group_name]
        current: dict[str, list[np.ndarray]] = {}
        for weight in group.attrs.get("weight_names", []):
            weight = weight.decode() if isinstance(weight, bytes) else str(weight)
            layer = weight.rsplit("/", 1)[0]
            current.setdefault(f"{group_name}/{layer}", []).append(np.asarray(group[weight]))
        layers.extend(current.items())
    return layers


def _to_torch(module: nn.Module, kernel: np.ndarray) -> np.ndarray:
    if isinstance(module, nn.Linear):
        return kernel.T
    return kernel.transpose(3, 2, 0, 1)  # Conv2D and Conv2DTranspose alike


def describe(model: nn.Module) -> str:
    """A one-line summary of the architecture for error messages."""
    return getattr(model, "description", type(model).__name__)


def _load_keras(model: nn.Module, fh: h5py.File, path: Path) -> None:
    theirs = _keras_arrays(fh)
    ours = _layers(model)
    their_names = [name for name, _ in theirs]
    has_attention = any("attention" in name for name in their_names)
    if has_attention != (getattr(model, "attention", None) is not None):
        raise WeightsMismatchError(
            f"weights file {str(path)!r} was saved {'with' if has_attention else 'without'} the attention "
            f"gate, but the model was built {'without' if has_attention else 'with'} it "
            f"(set dlfc.attention={'true' if has_attention else 'false'} to match the file); "
            f"file layers: {', '.join(their_names)}"
        )
    if len(theirs) != len(ours):
        raise WeightsMismatchError(
            f"weights file {str(path)!r} has {len(theirs)} weight layers ({', '.join(their_names)}), "
            f"the model ({describe(model)}) expects {len(ours)} ({', '.join(n for n, _ in ours)})"
        )
    state: dict[str, torch.Tensor] = {}
    for (their_name, arrays), (our_name, module) in zip(theirs, ours, strict=True):
        if len(arrays) != 2:
            raise WeightsMismatchError(
                f"weights file {str(path)!r}: layer {their_name!r} has {len(arrays)} arrays, expected kernel and bias"
            )
        kernel = _to_torch(module, arrays[0])
        for suffix, value, target in (("weight", kernel, module.weight), ("bias", arrays[1], module.bias)):
            if tuple(value.shape) != tuple(target.shape):
                shown = arrays[0].shape if suffix == "weight" else arrays[1].shape
                expected = (
                    _to_keras_shape(module, tuple(target.shape))
                    if suffix == "weight"
                    else tuple(target.shape)
                )
                raise WeightsMismatchError(
                    f"weights file {str(path)!r}: layer {their_name!r} {'kernel' if suffix == 'weight' else 'bias'} "
                    f"has shape {tuple(shown)}, the model ({describe(model)}) expects {expected} for {our_name!r}"
                )
            state[f"{our_name}.{suffix}"] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    _assign(model, state)


def _to_keras_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(module, nn.Linear):
        return shape[::-1]
    a, b, kh, kw = shape
    return (kh, kw, b, a)


def _load_own(model: nn.Module, fh: h5py.File, path: Path) -> None:
    saved = fh["state_dict"]
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(saved[k].shape) for k in saved}
    arch = fh.attrs.get("architecture", "?")
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise WeightsMismatchError(
            f"weights file {str(path)!r} ({arch}) does not fit the model ({describe(model)}): "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(extra)}" if extra else "",
                )
                if part
            )
        )
    for key, shape in expected.items():
        if found[key] != shape:
            raise WeightsMismatchError(
                f"weights file {str(path)!r} ({arch}): {key} has shape {found[key]}, "
                f"the model ({describe(model)}) expects {shape}"
            )
    _assign(model, {k: torch.from_numpy(np.asarray(saved[k])) for k in expected})


def _assign(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, value in model.state_dict().items():
            value.copy_(state[key].to(value.dtype))


def load(model: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``model`` in place; return which format it was (``"keras"`` or ``"harness-dlfc"``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlfc: weights file {str(path)!r} not found (parameter ae_weights)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsMismatchError(f"weights file {str(path)!r} is not an HDF5 file: {exc}") from None
    with fh:
        if fh.attrs.get("format") == OWN_FORMAT:
            _load_own(model, fh, path)
            return OWN_FORMAT
        if "layer_names" in fh.attrs:
            _load_keras(model, fh, path)
            return "keras"
    raise WeightsMismatchError(
        f"weights file {str(path)!r} is neither a Keras save_weights file (no 'layer_names') "
        f"nor a harness-dlfc file (no format attribute)"
    )


def save(model: nn.Module, path: str | Path, **attrs: Any) -> None:
    """Write ``model``'s weights to ``path`` in the plugin's own format, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format"] = OWN_FORMAT
            fh.attrs["architecture"] = describe(model)
            for key, value in attrs.items():
                fh.attrs[key] = value
            group = fh.create_group("state_dict")
            for key, value in model.state_dict().items():
                group.create_dataset(key, data=value.detach().cpu().numpy())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_attr(path: str | Path, name: str, default: Any = None) -> Any:
    """An attribute saved with :func:`save` (say, the pretraining loss curve), or ``default``."""
    with h5py.File(path, "r") as fh:
        return fh.attrs[name] if name in fh.attrs else default
