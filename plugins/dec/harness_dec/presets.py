"""DEC-keras' per-dataset settings (its ``DEC.py __main__``), and how a run's values are resolved.

DEC-keras hard-coded four values per dataset. Here each is a parameter whose default ``"auto"``
(strings) or ``None`` (numbers) means "take it from the preset"; the preset itself defaults to
``"auto"``, chosen from the dataset's name. The resolved values are recorded on the run as tags.
No Keras import here: the plugin manager imports this module in every process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

INITS = ("glorot_uniform", "variance_scaling")
"""``variance_scaling`` is DEC-keras' VarianceScaling(scale=1/3, mode='fan_in', distribution='uniform')."""
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Preset:
    """The autoencoder settings and target-update interval DEC-keras used for one dataset."""

    init: str
    pretrain_optimizer: str
    pretrain_lr: float
    pretrain_epochs: int
    update_interval: int


_SGD_300 = Preset("variance_scaling", "sgd", 1.0, 300, 140)
PRESETS: dict[str, Preset] = {
    # DEC.py: `if args.dataset == 'mnist' or args.dataset == 'fmnist'` (devyhia's fork adds coil20):
    # VarianceScaling(1/3, fan_in, uniform), SGD(lr=1, momentum=0.9), 300 epochs, interval 140.
    "mnist": _SGD_300,
    "fmnist": _SGD_300,
    "coil20": _SGD_300,
    "reuters10k": Preset("variance_scaling", "sgd", 1.0, 50, 30),
    # glorot_uniform + Adam are DEC-keras' base defaults; usps and stl keep them.
    "usps": Preset("glorot_uniform", "adam", 1e-3, 50, 30),
    "stl": Preset("glorot_uniform", "adam", 1e-3, 10, 30),
}

FALLBACK = "usps"
"""The preset for datasets DEC-keras never had (digits, ...).

DEC-keras' base defaults (glorot_uniform, Adam) are the USPS row, and USPS is the closest of its
datasets to small digit sets such as scikit-learn's digits (1,797 8x8 images): few samples, so
the short Adam budget (50 epochs, target update every 30 iterations) rather than 300 SGD epochs.
"""

PRESET_CHOICES = ("auto", *PRESETS)


def preset_for(dataset: str) -> str:
    """The preset ``"auto"`` stands for on ``dataset``."""
    return dataset if dataset in PRESETS else FALLBACK


@dataclass(frozen=True)
class Resolved:
    """Every value the run uses that a preset can supply, plus which preset supplied the rest."""

    preset: str
    init: str
    pretrain_optimizer: str
    pretrain_lr: float
    pretrain_epochs: int
    update_interval: int

    def tags(self) -> dict[str, str]:
        return {f"dec.resolved.{k}": str(v) for k, v in asdict(self).items()}


def resolve(params: Mapping[str, Any], dataset: str) -> Resolved:
    """Fill the ``auto``/``None`` parameters from the preset (``params['preset']``, or the dataset's).

    An explicit optimizer without an explicit learning rate gets that optimizer's preset rate
    (1.0 for SGD as DEC-keras used it, Keras' default 1e-3 for Adam), not the other optimizer's.
    """
    name = params.get("preset", "auto")
    name = preset_for(dataset) if name == "auto" else name
    if name not in PRESETS:
        raise ValueError(f"dec: unknown preset {name!r}; valid presets: {', '.join(PRESET_CHOICES)}")
    base = PRESETS[name]

    def pick(key: str) -> Any:
        value = params.get(key)
        return getattr(base, key) if value in (None, "auto") else value

    optimizer = pick("pretrain_optimizer")
    lr = params.get("pretrain_lr")
    if lr is None:
        lr = (
            base.pretrain_lr
            if optimizer == base.pretrain_optimizer
            else {"sgd": 1.0, "adam": 1e-3}[optimizer]
        )
    return Resolved(
        preset=name,
        init=pick("init"),
        pretrain_optimizer=optimizer,
        pretrain_lr=float(lr),
        pretrain_epochs=int(pick("pretrain_epochs")),
        update_interval=int(pick("update_interval")),
    )
