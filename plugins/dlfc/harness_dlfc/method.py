"""``fit_predict`` for DLFC: seed, pick the device, get a pretrained autoencoder, cluster.

The autoencoder comes from, in order: ``ae_weights`` (the authors' Keras file or one of ours),
the content-keyed cache (``context.cache_dir/dlfc``), or pretraining from scratch (then cached).
Imported only inside a worker, so the plugin registry never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import JobContext, MethodResult
from harness_dlfc import weights
from harness_dlfc.autoencoders import build_autoencoder
from harness_dlfc.batched import StackedModels, cluster_stacked, pretrain_stacked
from harness_dlfc.clustering import ClusteringLayer, ClusteringOutcome, cluster, encode_all
from harness_dlfc.pretrain import pretrain, reconstruction_stats

THREADS_ENV = "HARNESS_DLFC_THREADS"
"""Number of CPU threads for torch (unset: torch's default). Not a parameter: it does not change
the result beyond floating-point summation order, so it stays out of the run key."""
CACHE_VERSION = 1
"""Bump when a change to pretraining makes cached autoencoders stale."""
ALPHA = 1.0
"""Student-t degrees of freedom, hard-coded in the seed's train.py."""
COLLAPSED_SPREAD, COLLAPSED_PROGRESS = 1e-4, 1e-3
"""A collapsed pretraining: reconstructions vary by less than this fraction of the data's spread,
and the loss fell by less than this fraction from epoch 1 to the last."""
CLUSTER_LR, CLUSTER_MOMENTUM = 0.01, 0.9
"""The clustering optimizer is hard-coded in the seed, whatever ``-lr`` says (spec §1.11.3)."""


def resolve_device(requested: str) -> torch.device:
    """``auto`` → the first CUDA device when torch sees one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"dlfc: device {requested!r} requested but torch {torch.__version__} sees no CUDA device"
        )
    return torch.device(requested)


def seed_torch(seed: int) -> dict[str, str]:
    """Seed torch on every device and ask for deterministic kernels; return the flags as tags."""
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return {
        "torch.cudnn_deterministic": str(torch.backends.cudnn.deterministic),
        "torch.cudnn_benchmark": str(torch.backends.cudnn.benchmark),
        "torch.deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()),
    }


def cache_key(x: np.ndarray, context: JobContext, seed: int, params: dict[str, Any]) -> str:
    """What determines a pretrained autoencoder: data (by digest), size, seed and the AE parameters."""
    ae_params = {k: params[k] for k in ("mode", "attention", "batch_size", "ae_iterations", "learning_rate")}
    if params["mode"] == "ae":
        ae_params["include_layer"] = params["include_layer"]
    payload = {
        "version": CACHE_VERSION,
        "dataset": context.dataset,
        "input_size": context.input_size,
        "seed": seed,
        "shape": list(x.shape),
        "data_sha1": hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest(),
        "params": ae_params | {"mode": "cae" if params["mode"] == "dae" else params["mode"]},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict[str, Any], context: JobContext
) -> MethodResult:
    """Pretrain (or load) the autoencoder, initialise the centres with k-means, self-train."""
    if threads := os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(threads))
    device = resolve_device(context.device)
    dry = context.dry_run
    model, tags = _seeded_model(x, n_clusters, seed, params, device)
    data = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)  # NHWC → NCHW

    timings: dict[str, float] = {}
    start = time.perf_counter()
    curve: list[float] = []  # pretraining loss per epoch (none for ae_weights)
    if params["ae_weights"] is None:
        curve = _cached_or_pretrained(model, data, x, seed, params, context, tags)
    timings["pretrain"] = time.perf_counter() - start
    tags |= _reconstruction_tags(model, data, curve, seed, params, dry)

    start = time.perf_counter()
    kmeans = _kmeans(model, data, n_clusters, seed, dry)
    clustering = ClusteringLayer(n_clusters, kmeans.cluster_centers_.shape[1], alpha=ALPHA).to(device)
    with torch.no_grad():
        clustering.centres.copy_(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)))
    timings["kmeans"] = time.perf_counter() - start

    total = 1 if dry else params["cluster_iterations"]

    def on_update(it: int, labels: np.ndarray, delta: float, loss: float) -> None:
        extra = {"delta_label": delta} if it > 0 else {}
        if not np.isnan(loss):
            extra["loss"] = loss
        context.evaluate(labels, step=it, **extra)  # logged for the curves; the method never sees a score
        context.progress(it, total, _clustering_status(delta, loss))

    start = time.perf_counter()
    outcome = cluster(
        model,
        clustering,
        data,
        kmeans.labels_,
        batch_size=params["batch_size"],
        max_iterations=total,
        interval=params["interval_updation"],
        tolerance=params["tolerance_threshold"],
        learning_rate=CLUSTER_LR,
        momentum=CLUSTER_MOMENTUM,
        on_update=on_update,
    )
    timings["cluster"] = time.perf_counter() - start
    model.eval()
    embedding = encode_all(model.encode, data).cpu().numpy().astype(np.float32)
    context.progress(total, total, "done")

    tags |= _result_tags(device, model, outcome, kmeans, timings)
    return MethodResult(labels=outcome.labels.astype(np.int64), embedding=embedding, tags=tags)


def _seeded_model(
    x: np.ndarray, n_clusters: int, seed: int, params: dict[str, Any], device: torch.device
) -> tuple[torch.nn.Module, dict[str, str]]:
    """Seed torch, build the autoencoder (its initial weights come from the seed), load ``ae_weights``.

    The given weights file is loaded first, before any data moves: a file that does not fit fails
    the job within seconds, with a message naming the file, the layer and both shapes.
    """
    tags = seed_torch(seed)
    _, h, w, c = x.shape
    model = build_autoencoder(
        params["mode"], (h, w, c), n_clusters, params["attention"], params["include_layer"]
    )
    if params["ae_weights"] is not None:
        tags["dlfc.ae_weights_format"] = weights.load(model, params["ae_weights"])
        tags["dlfc.ae_weights_sha256"] = hashlib.sha256(Path(params["ae_weights"]).read_bytes()).hexdigest()
        tags["dlfc.ae_cache"] = "loaded"
    return model.to(device), tags


def fit_predict_seeds(
    x: np.ndarray,
    *,
    n_clusters: int,
    seeds: Sequence[int],
    params: dict[str, Any],
    contexts: Sequence[JobContext],
) -> list[MethodResult]:
    """``fit_predict`` for several seeds of one configuration, trained as one stacked model.

    Seed i gets what ``fit_predict(seed=seeds[i])`` gives it (initial weights, shuffles, k-means,
    target updates, stop rule; see :mod:`harness_dlfc.batched`) and logs on ``contexts[i]``.
    Cached autoencoders are shared with the single-seed path (same key per seed): cached seeds
    load, the others pretrain together. With ``ae_weights`` every seed starts from the same
    weights, so seeds differ only in their k-means start.
    """
    if len(seeds) != len(contexts) or not seeds:
        raise ValueError(f"dlfc: {len(seeds)} seeds but {len(contexts)} contexts")
    if threads := os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(threads))
    device = resolve_device(contexts[0].device)
    stack = params.get("stack_seeds", "auto")
    if stack == "never" or (stack == "auto" and device.type != "cuda"):
        # On a CPU the stacked (grouped) convolutions cost more than the seeds one at a time
        # (10 seeds: 18x one seed per pretraining epoch, measured): loop, with the same results.
        return [
            fit_predict(x, n_clusters=n_clusters, seed=seed, params=params, context=context)
            for seed, context in zip(seeds, contexts, strict=True)
        ]
    dry = contexts[0].dry_run
    built = [_seeded_model(x, n_clusters, seed, params, device) for seed in seeds]
    models, tags = [m for m, _ in built], [t for _, t in built]
    data = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)  # NHWC → NCHW

    timings: dict[str, float] = {}
    start = time.perf_counter()
    curves: list[list[float]] = [[] for _ in seeds]
    if params["ae_weights"] is None:
        curves = _cached_or_pretrained_seeds(models, tags, data, x, seeds, params, contexts)
    timings["pretrain"] = time.perf_counter() - start
    for model, t, curve, seed in zip(models, tags, curves, seeds, strict=True):
        t |= _reconstruction_tags(model, data, curve, seed, params, dry)

    start = time.perf_counter()
    kmeans = [_kmeans(model, data, n_clusters, seed, dry) for model, seed in zip(models, seeds, strict=True)]
    centres = torch.from_numpy(np.stack([k.cluster_centers_ for k in kmeans]).astype(np.float32)).to(device)
    timings["kmeans"] = time.perf_counter() - start

    total = 1 if dry else params["cluster_iterations"]

    def on_update(i: int, it: int, labels: np.ndarray, delta: float, loss: float) -> None:
        extra = {"delta_label": delta} if it > 0 else {}
        if not np.isnan(loss):
            extra["loss"] = loss
        contexts[i].evaluate(labels, step=it, **extra)
        contexts[i].progress(it, total, _clustering_status(delta, loss))

    start = time.perf_counter()
    outcomes = cluster_stacked(
        StackedModels(models),
        centres,
        data,
        [k.labels_ for k in kmeans],
        batch_size=params["batch_size"],
        max_iterations=total,
        interval=params["interval_updation"],
        tolerance=params["tolerance_threshold"],
        alpha=ALPHA,
        learning_rate=CLUSTER_LR,
        momentum=CLUSTER_MOMENTUM,
        on_update=on_update,
    )
    timings["cluster"] = time.perf_counter() - start

    results = []
    batch_tags = {"dlfc.batched_seeds": str(len(seeds)), "dlfc.batched_with": ",".join(map(str, seeds))}
    for model, t, outcome, km, context in zip(models, tags, outcomes, kmeans, contexts, strict=True):
        model.eval()
        embedding = encode_all(model.encode, data).cpu().numpy().astype(np.float32)
        context.progress(total, total, "done")
        t |= _result_tags(device, model, outcome, km, timings) | batch_tags
        results.append(MethodResult(labels=outcome.labels.astype(np.int64), embedding=embedding, tags=t))
    return results


def _clustering_status(delta: float, loss: float) -> str:
    """What the progress line shows while clustering: what the method itself can compute (the
    share of labels that changed, the loss), never a score against the truth."""
    text = "clustering" if np.isnan(delta) else f"clustering, {delta:.2%} changed"
    return text if np.isnan(loss) else f"{text}, loss {loss:.4f}"


def _reconstruction_tags(
    model: torch.nn.Module,
    data: torch.Tensor,
    curve: Sequence[float],
    seed: int,
    params: dict[str, Any],
    dry: bool,
) -> dict[str, str]:
    """Reconstruction error and spread (see :func:`reconstruction_stats`); whether pretraining collapsed.

    Collapsed: the reconstructions do not depend on the input *and* the loss has not fallen since
    the first epoch. (Early in a healthy run the spread passes through small values too, but the
    loss is falling.) At the seed's MNIST recipe (learning rate 1, no attention) this happens to
    some seeds within three epochs, and which ones depends on floating-point details: seed 2
    collapsed on an H100 and on the CPU, seed 0 only on the CPU. It is the seed's own behaviour,
    not a bug to hide, so the run goes on, flagged with a tag to filter on and a warning that the
    harness shows under the job.
    """
    recon, spread = reconstruction_stats(model, data[: params["batch_size"]] if dry else data)
    stuck = len(curve) >= 3 and curve[-1] >= (1 - COLLAPSED_PROGRESS) * curve[1]
    collapsed = stuck and spread < COLLAPSED_SPREAD
    if collapsed:
        warnings.warn(
            f"dlfc seed {seed}: pretraining collapsed (learning_rate {params['learning_rate']}): the decoder "
            f"outputs the same image for every input (spread {spread:.2g} of the data's), the loss has not "
            f"fallen since epoch 1 (now {curve[-1]:.4g}), and clustering starts from an encoder that "
            "pretraining did not train",
            stacklevel=2,
        )
    return {
        "dlfc.recon_mse": f"{recon:.6g}",
        "dlfc.recon_spread": f"{spread:.3g}",
        "dlfc.pretrain_collapsed": str(collapsed),
    }


def _kmeans(model: torch.nn.Module, data: torch.Tensor, n_clusters: int, seed: int, dry: bool) -> Any:
    """k-means on the (post-attention) latent space, which initialises the centres.

    sklearn 0.19's defaults, set explicitly: k-means++, 20 restarts, 300 iterations, tol 1e-4;
    seeded here (the seed drew from NumPy's global generator). Lloyd and Elkan (0.19's choice) are
    exact algorithms for the same objective and reach the same partitions.
    """
    from sklearn.cluster import KMeans

    model.eval()
    features = encode_all(model.encode, data).cpu().numpy()
    return KMeans(
        n_clusters=n_clusters,
        init="k-means++",
        n_init=1 if dry else 20,
        max_iter=300,
        tol=1e-4,
        algorithm="lloyd",
        random_state=seed,
    ).fit(features)


def _result_tags(
    device: torch.device,
    model: torch.nn.Module,
    outcome: ClusteringOutcome,
    kmeans: Any,
    timings: dict[str, float],
) -> dict[str, str]:
    from sklearn import __version__ as sklearn_version

    tags = {
        "device": str(device),
        "version.torch": torch.__version__,
        "version.cuda": str(torch.version.cuda),
        "version.scikit-learn": sklearn_version,
        "torch.num_threads": str(torch.get_num_threads()),
        "dlfc.n_parameters": str(sum(p.numel() for p in model.parameters())),
        "dlfc.iterations": str(outcome.iterations),
        "dlfc.stopped_by_tolerance": str(outcome.stopped_by_tolerance),
        "dlfc.last_delta_label": f"{outcome.last_delta:.6g}",
        "dlfc.kmeans_inertia": f"{kmeans.inertia_:.6g}",
    } | {f"dlfc.{k}_s": f"{v:.1f}" for k, v in timings.items()}
    if device.type == "cuda":
        tags["device.name"] = torch.cuda.get_device_name(device)
    return tags


def _cached_or_pretrained(
    model: torch.nn.Module,
    data: torch.Tensor,
    x: np.ndarray,
    seed: int,
    params: dict[str, Any],
    context: JobContext,
    tags: dict[str, str],
) -> list[float]:
    """Fill ``model`` from the content-keyed cache, or pretrain it and cache it; add tags, return its curve."""
    dry = context.dry_run
    path = _cache_path(x, context, seed, params)
    tags["dlfc.ae_cache_file"] = str(path)
    if (cached := _load_cached(model, path, context)) is not None:
        tags["dlfc.ae_cache"] = "hit"
        return cached
    tags["dlfc.ae_cache"] = "miss"

    epochs = 1 if dry else params["ae_iterations"]

    def on_epoch(epoch: int, loss: float) -> None:
        context.log_metric("pretrain_loss", loss, epoch)
        context.progress(epoch + 1, epochs, f"pretraining, loss {loss:.4f}")

    history = pretrain(
        model,
        data,
        epochs=epochs,
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        generator=torch.Generator().manual_seed(seed),
        max_batches=1 if dry else None,
        on_epoch=on_epoch,
    )
    if not dry:  # one batch is no autoencoder: never cache it
        weights.save(model, path, pretrain_loss=np.asarray(history, dtype=np.float64))
    return history


def _cache_path(x: np.ndarray, context: JobContext, seed: int, params: dict[str, Any]) -> Path:
    return Path(context.cache_dir) / "dlfc" / f"ae-{cache_key(x, context, seed, params)}.h5"


def _load_cached(model: torch.nn.Module, path: Path, context: JobContext) -> list[float] | None:
    """Fill ``model`` from a cached autoencoder; log that run's pretraining curve and return it.

    None on a miss."""
    if not path.is_file() or context.dry_run:
        return None
    weights.load(model, path)
    curve = [float(loss) for loss in weights.read_attr(path, "pretrain_loss", ())]
    for epoch, loss in enumerate(curve):
        context.log_metric("pretrain_loss", loss, epoch)  # the cached run's curve
    return curve


def _cached_or_pretrained_seeds(
    models: list[torch.nn.Module],
    tags: list[dict[str, str]],
    data: torch.Tensor,
    x: np.ndarray,
    seeds: Sequence[int],
    params: dict[str, Any],
    contexts: Sequence[JobContext],
) -> list[list[float]]:
    """:func:`_cached_or_pretrained` for several seeds: cached ones load, the rest pretrain stacked."""
    paths = [_cache_path(x, ctx, seed, params) for ctx, seed in zip(contexts, seeds, strict=True)]
    curves: list[list[float]] = []
    todo = []
    for i, (model, path, context) in enumerate(zip(models, paths, contexts, strict=True)):
        cached = _load_cached(model, path, context)
        tags[i] |= {"dlfc.ae_cache": "miss" if cached is None else "hit", "dlfc.ae_cache_file": str(path)}
        curves.append(cached or [])
        if cached is None:
            todo.append(i)
    if not todo:
        return curves
    dry = contexts[0].dry_run
    epochs = 1 if dry else params["ae_iterations"]

    def on_epoch(epoch: int, losses: list[float]) -> None:
        for i, loss in zip(todo, losses, strict=True):
            contexts[i].log_metric("pretrain_loss", loss, epoch)
            contexts[i].progress(epoch + 1, epochs, f"pretraining, loss {loss:.4f}")

    history = pretrain_stacked(
        StackedModels([models[i] for i in todo]),
        data,
        epochs=epochs,
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        generators=[torch.Generator().manual_seed(seeds[i]) for i in todo],
        max_batches=1 if dry else None,
        on_epoch=on_epoch,
    )
    for i, curve in zip(todo, history, strict=True):
        curves[i] = list(curve)
        if not dry:  # one batch is no autoencoder: never cache it
            weights.save(models[i], paths[i], pretrain_loss=np.asarray(curve, dtype=np.float64))
    return curves
