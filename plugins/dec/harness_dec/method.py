"""DEC as DEC-keras runs it: pretrain an autoencoder, k-means on its embedding, then self-train.

Follows ``specs/dec.md`` §2 (XifengGuo/DEC-keras, and devyhia's fork for COIL-20). Where this
differs from DEC-keras, a comment says where and why.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import JobContext, MethodResult
from harness_dec import clustering, presets, runtime
from harness_dec.cache import AECache, ae_key

if TYPE_CHECKING:  # Keras is imported inside fit_predict, after the backend is chosen
    import keras

PREDICT_CHUNK = 8192
"""Rows per forward pass when predicting on the whole data set (memory, not results)."""


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict[str, Any], context: JobContext
) -> MethodResult:
    """Cluster ``x`` (N, D) float32 in [0, 1] with DEC.

    Returns the labels of the **last target update**, as DEC-keras reports them: when the stop
    rule fires they are the labels it just compared; when ``maxiter`` ends the loop they are those
    of the last update, not of the weights after the final few gradient steps. The embedding is
    the encoder's output at the end of training.
    """
    resolved = presets.resolve(params, context.dataset)
    ae_weights = params.get("ae_weights")
    if ae_weights is not None and not Path(ae_weights).expanduser().is_file():
        raise FileNotFoundError(f"dec: ae_weights file {ae_weights!r} does not exist")
    if len(x) < n_clusters:
        raise ValueError(f"dec: {len(x)} samples cannot form {n_clusters} clusters")

    runtime.select_backend(params["backend"], context.device)
    tags = runtime.configure(params["backend"], context.device, params["threads"], params["deterministic"], seed)
    tags |= resolved.tags()

    import keras
    from keras import ops

    from harness_dec.model import HIDDEN, autoencoder, dec_model

    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    batch_size = params["batch_size"]
    hidden = (*HIDDEN[:-1], params["embedding_dim"])
    ae, encoder = autoencoder(dim, hidden, resolved.init)

    # ---- stage 1: the autoencoder (cached, loaded, or trained) -------------------------------
    start = time.perf_counter()
    fields = {
        "dataset": context.dataset, "input_size": context.input_size, "n": n, "d": dim, "seed": seed,
        "hidden": list(hidden), "init": resolved.init, "optimizer": resolved.pretrain_optimizer,
        "lr": resolved.pretrain_lr, "momentum": 0.9 if resolved.pretrain_optimizer == "sgd" else None,
        "epochs": resolved.pretrain_epochs, "batch_size": batch_size, "backend": params["backend"],
    }
    if ae_weights is not None:
        ae.load_weights(Path(ae_weights).expanduser())
        tags |= {"dec.ae_cache": "loaded", "dec.ae_weights": str(ae_weights)}
    elif context.dry_run:
        _pretrain(ae, x[:batch_size], resolved, batch_size, epochs=1, context=context)
        tags["dec.ae_cache"] = "skipped (dry run)"
    else:
        cache = AECache(Path(context.cache_dir) / "dec", ae_key(x, fields))
        tags["dec.ae_key"] = cache.key
        if cache.exists():
            meta = cache.load(ae)
            # The curve of the autoencoder this run uses, so every run shows how it was trained.
            for epoch, loss in enumerate(meta["pretrain_loss"], start=1):
                context.log_metric("pretrain_loss", loss, epoch)
            tags["dec.ae_cache"] = "hit"
        else:
            history = _pretrain(ae, x, resolved, batch_size, resolved.pretrain_epochs, context)
            cache.save(ae, {**fields, "pretrain_loss": history})
            tags["dec.ae_cache"] = "miss"
    tags["dec.pretrain_s"] = f"{time.perf_counter() - start:.1f}"

    # ---- stage 2: k-means on the embedding initialises the centres ---------------------------
    from sklearn.cluster import KMeans

    # Resident on the accelerator for the whole clustering phase: batches are slices, not copies.
    x_dev = ops.convert_to_tensor(x)
    kmeans = KMeans(
        n_clusters, init="k-means++", n_init=1 if context.dry_run else params["n_init"],
        max_iter=300, tol=1e-4, algorithm="lloyd", random_state=seed,
    )  # sklearn 0.19's defaults spelled out (its 'auto' ran elkan: same fixed points, other speed)
    labels_last = kmeans.fit_predict(_predict(encoder, x_dev, n))
    model = dec_model(encoder, n_clusters)
    model.get_layer("clustering").set_weights([kmeans.cluster_centers_.astype(np.float32)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=params["lr"], momentum=0.9), loss="kld")

    # ---- stage 3: self-training on the target distribution -----------------------------------
    start = time.perf_counter()
    order = None
    if params["order"] == "shuffled":
        # One fixed permutation of the rows, then DEC-keras' sequential batches over it. For data
        # stored class by class (COIL-20 here: object by object) the batches then mix classes, as
        # they did for devyhia, whose loader read the PNGs in file-system (hash) order.
        order = np.random.default_rng(seed).permutation(n)
        x_dev = ops.convert_to_tensor(x[order])
    labels, stopped, iteration = self_train(
        model, x_dev, labels_last if order is None else labels_last[order], interval=resolved.update_interval,
        maxiter=1 if context.dry_run else params["maxiter"], tol=params["tol"], batch_size=batch_size,
        context=context, order=order,
    )
    tags |= {
        "dec.stopped": stopped,
        "dec.iterations": str(iteration),
        "dec.cluster_s": f"{time.perf_counter() - start:.1f}",
        "dec.labels": "last target update (as DEC-keras)",
    }
    context.progress(1, 1, f"done ({stopped} at iteration {iteration})")
    embedding = _predict(encoder, x_dev, n)
    if order is not None:
        embedding = _unpermute(embedding, order)
    return MethodResult(labels=np.asarray(labels, dtype=np.int64), embedding=embedding, tags=tags)


def self_train(
    model: keras.Model, x_dev: Any, labels_init: np.ndarray, *, interval: int, maxiter: int, tol: float, batch_size: int,
    context: JobContext, order: np.ndarray | None = None,
) -> tuple[np.ndarray, str, int]:
    """DEC-keras' clustering loop; returns (labels of the last target update, why it stopped, iteration).

    Every ``interval`` iterations: predict Q on all the data, recompute P, log the scores, apply the
    stop rule; in between, one ``train_on_batch`` per iteration on sequential slices of P and of the
    device-resident data (a compiled step per call, no host copies of the inputs). When the rows
    of ``x_dev`` are ``x[order]``, the labels reported and returned are put back in ``x``'s order.
    """
    from keras import ops

    n = len(labels_init)
    labels = labels_last = labels_init
    loss, stopped, iteration, p_dev = 0.0, "maxiter", 0, None
    for iteration in range(maxiter):
        if iteration % interval == 0:
            q = _predict(model, x_dev, n)
            p_dev = ops.convert_to_tensor(clustering.target_distribution(q).astype(np.float32))
            labels = q.argmax(axis=1)
            changed = clustering.changed_fraction(labels, labels_last)
            labels_last = labels
            # DEC-keras' log row: the loss is that of the last batch before this update.
            context.evaluate(labels if order is None else _unpermute(labels, order), step=iteration, loss=loss, delta_label=changed)
            context.progress(iteration, maxiter, f"clustering, {changed:.2%} changed")
            if clustering.should_stop(iteration, changed, tol):
                stopped = "tol"
                break
        rows = clustering.batch_at(iteration, batch_size, n)
        loss = float(model.train_on_batch(x_dev[rows.start : rows.stop], p_dev[rows.start : rows.stop]))
    return (labels if order is None else _unpermute(labels, order)), stopped, iteration


def _unpermute(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows computed on ``x[order]``, back in the order of ``x``."""
    out = np.empty_like(values)
    out[order] = values
    return out


def _pretrain(ae: keras.Model, x: np.ndarray, resolved: presets.Resolved, batch_size: int, epochs: int, context: JobContext) -> list[float]:
    """End-to-end MSE training of the whole autoencoder, shuffled batches (DEC-keras' ``pretrain``).

    Unlike the DEC paper (greedy layer-wise denoising pretraining), DEC-keras trains all layers at
    once without noise or dropout; so do we.
    """
    import keras

    if resolved.pretrain_optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=resolved.pretrain_lr, momentum=0.9)
    else:  # Keras' Adam defaults (epsilon 1e-7, as Keras >= 2.1.3 that DEC-keras ran on)
        optimizer = keras.optimizers.Adam(learning_rate=resolved.pretrain_lr)
    ae.compile(optimizer=optimizer, loss="mse")
    history: list[float] = []

    def on_epoch_end(epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", float("nan")))
        history.append(loss)
        context.log_metric("pretrain_loss", loss, epoch + 1)
        context.progress(epoch + 1, epochs, f"pretraining, loss {loss:.4g}")

    ae.fit(
        x, x, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)],
    )
    return history


def _predict(model: keras.Model, x_dev: Any, n: int) -> np.ndarray:
    """The model's output on all rows, in chunks of the device-resident data (no host round trip
    of the inputs, and no per-call data-adapter set-up as ``model.predict`` would do)."""
    parts = [
        np.asarray(model.predict_on_batch(x_dev[start : min(start + PREDICT_CHUNK, n)]))
        for start in range(0, n, PREDICT_CHUNK)
    ]
    return np.concatenate(parts)
