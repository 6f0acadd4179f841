"""DLFC (Deep Latent Feature Clustering, maheshkkumar/DLClustering, 2018) as a harness method.

DEC with a small convolutional autoencoder (or DEC's MLP), an optional softmax "attention" gate on
the embedding, and an embedding as wide as the number of clusters; see ``specs/dlfc.md``. Written
in PyTorch; loads the authors' published Keras weights. Where this differs from the seed's code it
says so next to the change:

* ``attention`` is a real boolean (the seed's ``-att False`` turned attention on);
* ``learning_rate`` has a usable default (the seed's ``-lr`` had none and crashed without it);
* pretraining from scratch works (it crashed at the seed's HEAD);
* inputs are the harness' [0, 1] single-channel images for every dataset (the seed divided USPS by
  255 twice and fed COIL-20 unscaled and RGB-replicated);
* the MLP input is never reduced by PCA(728) (the seed did so for inputs over 1,024 values).

torch is imported only inside ``fit_predict``: this module is imported in every process that builds
the plugin registry, k-means workers included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import JobContext, MethodResult, MethodSpec, Param, hookimpl

MODES = ("cae", "dae", "ae")

PARAMS = (
    Param(
        "mode",
        str,
        "cae",
        "autoencoder: 'cae' convolutional (the README's), 'dae' the seed's older name for the same "
        "network (it adds no noise), 'ae' DEC's MLP [D, 500, 500, 2000, K]",
        choices=MODES,
    ),
    Param("attention", bool, False, "gate the embedding: z * softmax(W z + b)"),
    Param(
        "include_layer",
        int,
        None,
        "extra hidden width before the embedding (mode 'ae' only)",
        low=1,
        nullable=True,
    ),
    Param("batch_size", int, 256, "mini-batch size of pretraining and clustering", low=1),
    Param(
        "ae_iterations", int, 300, "autoencoder pretraining epochs (ignored when ae_weights is given)", low=1
    ),
    Param(
        "learning_rate",
        float,
        1.0,
        "SGD (momentum 0.9) learning rate of the autoencoder *pretraining*; the clustering phase "
        "always uses 0.01, as in the seed. README: 1 without attention, 0.1 with it",
        low=0,
        low_inclusive=False,
    ),
    Param(
        "cluster_iterations",
        int,
        15000,
        "maximum clustering mini-batch iterations (README runs: 20000)",
        low=1,
    ),
    Param("interval_updation", int, 140, "iterations between target-distribution updates", low=1),
    Param(
        "tolerance_threshold",
        float,
        0.001,
        "stop when fewer than this fraction of labels changed between two target updates",
        low=0,
        high=1,
    ),
    Param(
        "ae_weights",
        str,
        None,
        "pretrained autoencoder weights: the authors' Keras .h5 or this plugin's own .h5 "
        "(skips pretraining; must match mode, attention, input size and K)",
        nullable=True,
    ),
    Param(
        "stack_seeds",
        str,
        "auto",
        "with --batch-seeds: 'always' trains the seeds as one stacked model (vmap), 'never' one "
        "after another in the worker, 'auto' stacks on a GPU only (on a CPU stacking is slower)",
        choices=("auto", "always", "never"),
        in_run_key=False,
    ),
)


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict[str, Any], context: JobContext
) -> MethodResult:
    """Cluster images (N, H, W, C) in [0, 1]; see :func:`harness_dlfc.method.fit_predict`."""
    from harness_dlfc.method import fit_predict as run

    return run(x, n_clusters=n_clusters, seed=seed, params=params, context=context)


def fit_predict_seeds(
    x: np.ndarray, *, n_clusters: int, seeds: list[int], params: dict[str, Any], contexts: list[JobContext]
) -> list[MethodResult]:
    """Several seeds trained as one stacked model; see :func:`harness_dlfc.method.fit_predict_seeds`."""
    from harness_dlfc.method import fit_predict_seeds as run

    return run(x, n_clusters=n_clusters, seeds=seeds, params=params, contexts=contexts)


def gpu_check(params: dict[str, Any], device: str) -> str | None:
    """A ``+cpu`` torch cannot use the GPU ``harness run`` sees: say so before DLFC trains on the CPU
    (install metadata only; torch is not imported in the parent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("torch")
    except PackageNotFoundError:
        return None
    if not installed.endswith("+cpu"):
        return None
    return f"dlfc: a GPU is visible but torch {installed} cannot use it; install with pip install -r requirements-gpu.txt"


@hookimpl
def harness_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dlfc",
            fit_predict=fit_predict,
            fit_predict_seeds=fit_predict_seeds,
            params=PARAMS,
            input="image",
            framework="pytorch",
            description="DLFC: DEC with a conv (or MLP) autoencoder, optional attention gate, embedding size K",
            min_size=4,
            gpu_check=gpu_check,
        )
    ]
