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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import JobContext, MethodResult
from harness_dlfc import weights
from harness_dlfc.autoencoders import build_autoencoder
from harness_dlfc.clustering import ClusteringLayer, cluster, encode_all
from harness_dlfc.pretrain import pretrain, reconstruction_mse

THREADS_ENV = "HARNESS_DLFC_THREADS"
"""Number of CPU threads for torch (unset: torch's default). Not a parameter: it does not change
the result beyond floating-point summation order, so it stays out of the run key."""
CACHE_VERSION = 1
"""Bump when a change to pretraining makes cached autoencoders stale."""
ALPHA = 1.0
"""Student-t degrees of freedom, hard-coded in the seed's train.py."""
CLUSTER_LR, CLUSTER_MOMENTUM = 0.01, 0.9
"""The clustering optimizer is hard-coded in the seed, whatever ``-lr`` says (spec §1.11.3)."""


def resolve_device(requested: str) -> torch.device:
    """``auto`` → the first CUDA device when torch sees one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"dlfc: device {requested!r} requested but torch {torch.__version__} sees no CUDA device")
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
    from sklearn import __version__ as sklearn_version
    from sklearn.cluster import KMeans

    if threads := os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(threads))
    tags = seed_torch(seed)
    device = resolve_device(context.device)
    dry = context.dry_run
    _, h, w, c = x.shape

    model = build_autoencoder(params["mode"], (h, w, c), n_clusters, params["attention"], params["include_layer"])
    # Load a given weights file first, before any data moves: a file that does not fit fails the
    # job within seconds, with a message naming the file, the layer and both shapes.
    if params["ae_weights"] is not None:
        tags["dlfc.ae_weights_format"] = weights.load(model, params["ae_weights"])
        tags["dlfc.ae_weights_sha256"] = hashlib.sha256(Path(params["ae_weights"]).read_bytes()).hexdigest()
        tags["dlfc.ae_cache"] = "loaded"
    model.to(device)
    data = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)  # NHWC → NCHW

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if params["ae_weights"] is None:
        tags |= _cached_or_pretrained(model, data, x, seed, params, context)
    timings["pretrain"] = time.perf_counter() - start
    tags["dlfc.recon_mse"] = f"{reconstruction_mse(model, data[: params['batch_size']] if dry else data):.6g}"

    # k-means on the (post-attention) latent space initialises the centres. sklearn 0.19's
    # defaults, set explicitly: k-means++, 20 restarts, 300 iterations, tol 1e-4; seeded here (the
    # seed drew from NumPy's global generator). Lloyd and Elkan (0.19's choice) are exact
    # algorithms for the same objective and reach the same partitions.
    start = time.perf_counter()
    model.eval()
    features = encode_all(model.encode, data).cpu().numpy()
    kmeans = KMeans(
        n_clusters=n_clusters, init="k-means++", n_init=1 if dry else 20, max_iter=300, tol=1e-4,
        algorithm="lloyd", random_state=seed,
    ).fit(features)
    clustering = ClusteringLayer(n_clusters, features.shape[1], alpha=ALPHA).to(device)
    with torch.no_grad():
        clustering.centres.copy_(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)))
    timings["kmeans"] = time.perf_counter() - start

    total = 1 if dry else params["cluster_iterations"]

    def on_update(it: int, labels: np.ndarray, delta: float, loss: float) -> None:
        extra = {"delta_label": delta} if it > 0 else {}
        if not np.isnan(loss):
            extra["loss"] = loss
        scores = context.evaluate(labels, step=it, **extra)
        context.progress(it, total, f"clustering, ACC {scores.get('acc', float('nan')):.3f}")

    start = time.perf_counter()
    outcome = cluster(
        model, clustering, data, kmeans.labels_,
        batch_size=params["batch_size"], max_iterations=total,
        interval=params["interval_updation"], tolerance=params["tolerance_threshold"],
        learning_rate=CLUSTER_LR, momentum=CLUSTER_MOMENTUM, on_update=on_update,
    )
    timings["cluster"] = time.perf_counter() - start
    model.eval()
    embedding = encode_all(model.encode, data).cpu().numpy().astype(np.float32)
    context.progress(total, total, "done")

    tags |= {
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
    return MethodResult(labels=outcome.labels.astype(np.int64), embedding=embedding, tags=tags)


def _cached_or_pretrained(
    model: torch.nn.Module, data: torch.Tensor, x: np.ndarray, seed: int, params: dict[str, Any], context: JobContext
) -> dict[str, str]:
    """Fill ``model`` from the content-keyed cache, or pretrain it and cache it; return tags."""
    dry = context.dry_run
    path = Path(context.cache_dir) / "dlfc" / f"ae-{cache_key(x, context, seed, params)}.h5"
    if path.is_file() and not dry:
        weights.load(model, path)
        for epoch, loss in enumerate(weights.read_attr(path, "pretrain_loss", ())):
            context.log_metric("pretrain_loss", float(loss), epoch)  # the cached run's curve
        return {"dlfc.ae_cache": "hit", "dlfc.ae_cache_file": str(path)}

    epochs = 1 if dry else params["ae_iterations"]

    def on_epoch(epoch: int, loss: float) -> None:
        context.log_metric("pretrain_loss", loss, epoch)
        context.progress(epoch + 1, epochs, f"pretraining, loss {loss:.4f}")

    history = pretrain(
        model, data, epochs=epochs, batch_size=params["batch_size"], learning_rate=params["learning_rate"],
        generator=torch.Generator().manual_seed(seed), max_batches=1 if dry else None, on_epoch=on_epoch,
    )
    if not dry:  # one batch is no autoencoder: never cache it
        weights.save(model, path, pretrain_loss=np.asarray(history, dtype=np.float64))
    return {"dlfc.ae_cache": "miss", "dlfc.ae_cache_file": str(path)}
