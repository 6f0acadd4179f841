"""harness plugin: DEC (Xie, Girshick & Farhadi, ICML 2016) as DEC-keras runs it, in Keras 3.

Registers the ``dec`` method. Keras and the framework are imported inside ``fit_predict`` only:
this module is imported in every harness process (k-means workers included), and the Keras
backend must be chosen before the first ``import keras``.

Parameters mirror DEC-keras' command line (batch_size, maxiter, pretrain_epochs, update_interval,
tol, ae_weights) plus its per-dataset presets; see :mod:`harness_dec.presets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import JobContext, MethodResult, MethodSpec, Param, hookimpl
from harness_dec.presets import INITS, OPTIMIZERS, PRESET_CHOICES
from harness_dec.runtime import BACKEND_CHOICES, gpu_problem

PARAMS = (
    Param(
        "preset",
        str,
        "auto",
        "DEC-keras' per-dataset settings; auto = by dataset name (usps for datasets DEC-keras never had)",
        choices=PRESET_CHOICES,
    ),
    Param(
        "init",
        str,
        "auto",
        "kernel initializer (variance_scaling = VarianceScaling(1/3, fan_in, uniform)); "
        "auto = from the preset",
        choices=("auto", *INITS),
    ),
    Param(
        "pretrain_optimizer",
        str,
        "auto",
        "autoencoder optimizer: SGD(momentum 0.9) or Adam; auto = from the preset",
        choices=("auto", *OPTIMIZERS),
    ),
    Param(
        "pretrain_lr",
        float,
        None,
        "autoencoder learning rate; none = the preset's (SGD 1.0, Adam 0.001)",
        low=0,
        low_inclusive=False,
        nullable=True,
    ),
    Param(
        "pretrain_epochs",
        int,
        None,
        "autoencoder epochs; none = the preset's (300 mnist/fmnist/coil20, 50 usps)",
        low=1,
        nullable=True,
    ),
    Param(
        "update_interval",
        int,
        None,
        "iterations between target updates; none = the preset's (140, or 30 for usps)",
        low=1,
        nullable=True,
    ),
    Param("batch_size", int, 256, "mini-batch size of both phases", low=1),
    Param("maxiter", int, 20000, "most clustering iterations (mini-batches)", low=1),
    Param(
        "tol",
        float,
        0.001,
        "stop when fewer than this share of labels change between target updates",
        low=0,
        high=1,
    ),
    Param("lr", float, 0.01, "clustering-phase SGD learning rate (momentum 0.9)", low=0, low_inclusive=False),
    Param(
        "order",
        str,
        "given",
        "row order of the clustering phase's sequential batches: as given (DEC-keras), "
        "or one seeded permutation (for data stored class by class)",
        choices=("given", "shuffled"),
    ),
    Param("n_init", int, 20, "k-means++ restarts on the embedding that initialise the centres", low=1),
    Param("embedding_dim", int, 10, "size of the embedding (DEC-keras: 10 for every dataset)", low=1),
    Param(
        "ae_weights",
        str,
        None,
        "load this pretrained autoencoder (.weights.h5, or a DEC-keras .h5) instead of training one",
        nullable=True,
    ),
    Param(
        "backend",
        str,
        "auto",
        "Keras backend (its framework must be installed); auto = $KERAS_BACKEND if set, "
        "else tensorflow where installed, else jax, else torch",
        choices=BACKEND_CHOICES,
    ),
    Param(
        "threads",
        int,
        None,
        "CPU threads for the framework (intra- and inter-op); none = the framework's default",
        low=1,
        nullable=True,
        in_run_key=False,
    ),
    Param("deterministic", bool, False, "deterministic framework ops (slower; TF: enable_op_determinism)"),
)


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict[str, Any], context: JobContext
) -> MethodResult:
    """See :func:`harness_dec.method.fit_predict` (imported here lazily, with Keras)."""
    from harness_dec.method import fit_predict as run

    return run(x, n_clusters=n_clusters, seed=seed, params=params, context=context)


def fit_predict_seeds(
    x: np.ndarray,
    *,
    n_clusters: int,
    seeds: Sequence[int],
    params: dict[str, Any],
    contexts: Sequence[JobContext],
) -> list[MethodResult]:
    """See :func:`harness_dec.method.fit_predict_seeds`: S seeds as one stacked model."""
    from harness_dec.method import fit_predict_seeds as run

    return run(x, n_clusters=n_clusters, seeds=seeds, params=params, contexts=contexts)


def gpu_check(params: dict[str, Any], device: str) -> str | None:
    """Why the Keras backend DEC would run on cannot use the visible GPU (see :func:`gpu_problem`)."""
    return gpu_problem(params.get("backend", "auto"), device)


@hookimpl
def harness_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dec",
            fit_predict=fit_predict,
            fit_predict_seeds=fit_predict_seeds,
            params=PARAMS,
            input="flat",
            framework="keras",
            description="DEC (Xie et al. 2016) as DEC-keras: AE [D-500-500-2000-10] + KL self-training",
            gpu_check=gpu_check,
        )
    ]
