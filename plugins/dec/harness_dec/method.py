"""DEC as DEC-keras runs it: pretrain an autoencoder, k-means on its embedding, then self-train.

Follows ``specs/dec.md`` §2 (XifengGuo/DEC-keras, and devyhia's fork for COIL-20). Where this
differs from DEC-keras, a comment says where and why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import JobContext, MethodResult
from harness_dec import clustering, presets, runtime
from harness_dec.cache import AECache, ae_key

PREDICT_ROWS = 32768
"""Rows x seeds per forward pass when predicting on the whole data set (memory, not results):
one compiled call per 32,768 rows for one seed, per 3,276 rows each for ten."""


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict[str, Any], context: JobContext
) -> MethodResult:
    """Cluster ``x`` (N, D) float32 in [0, 1] with DEC.

    Returns the labels of the **last target update**, as DEC-keras reports them: when the stop
    rule fires they are the labels it just compared; when ``maxiter`` ends the loop they are those
    of the last update, not of the weights after the final few gradient steps. The embedding is
    the encoder's output at the end of training.

    One seed is the seed-batched path with S = 1 (:func:`fit_predict_seeds`), so a seed trained
    alone and in a batch runs the same code on the same initial weights and batch order.
    """
    return fit_predict_seeds(x, n_clusters=n_clusters, seeds=[seed], params=params, contexts=[context])[0]


def fit_predict_seeds(
    x: np.ndarray,
    *,
    n_clusters: int,
    seeds: Sequence[int],
    params: dict[str, Any],
    contexts: Sequence[JobContext],
) -> list[MethodResult]:
    """DEC for several seeds of one configuration at once, as one stacked model (``harness run
    --batch-seeds``); seed ``seeds[i]`` logs to ``contexts[i]`` and gets ``results[i]``.

    Each seed keeps what :func:`fit_predict` would give it: the initial weights built under its
    seed, its own pretraining batch order, its own k-means (seeded by it), its own target updates
    and stop rule (a seed that stops is frozen while the others go on; its labels are those of
    its last update). The pretrained autoencoder is cached per seed under the same key as alone.
    """
    seeds = [int(s) for s in seeds]
    if len(contexts) != len(seeds) or not seeds:
        raise ValueError(f"dec: {len(seeds)} seeds but {len(contexts)} contexts")
    context = contexts[0]  # what all seeds share: dataset, device, cache, dry run
    resolved = presets.resolve(params, context.dataset)
    ae_weights = params.get("ae_weights")
    if ae_weights is not None and not Path(ae_weights).expanduser().is_file():
        raise FileNotFoundError(f"dec: ae_weights file {ae_weights!r} does not exist")
    if len(x) < n_clusters:
        raise ValueError(f"dec: {len(x)} samples cannot form {n_clusters} clusters")

    backend = runtime.resolve_backend(params.get("backend", "auto"), context.device)
    runtime.select_backend(backend, context.device)
    base = runtime.configure(backend, context.device, params["threads"], params["deterministic"], seeds[0])
    base |= resolved.tags()
    if len(seeds) > 1:
        base["dec.seed_batch"] = ",".join(map(str, seeds))
    tags = [base | {"determinism.seed": str(s)} for s in seeds]

    from keras import ops

    from harness_dec import stacked
    from harness_dec.model import HIDDEN

    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    batch_size = params["batch_size"]
    hidden = (*HIDDEN[:-1], params["embedding_dim"])
    aes = initial_autoencoders(seeds, dim, hidden, resolved.init)
    # Resident on the accelerator for the whole run: batches are gathered there by index.
    x_dev = ops.convert_to_tensor(x)
    used = runtime.tensor_device(backend, x_dev)  # the truth, whatever was asked for or listed
    runtime.check_device_used(backend, used["device"], context.device)
    tags = [t | used for t in tags]

    # ---- stage 1: the autoencoders (cached, loaded, or trained together) ---------------------
    start = time.perf_counter()
    train: list[int] = []  # positions in ``seeds`` whose autoencoder must be trained
    caches: dict[int, tuple[AECache, dict[str, Any]]] = {}  # position -> (cache, its key fields)
    for i, s in enumerate(seeds):
        fields = {
            "dataset": context.dataset,
            "input_size": context.input_size,
            "n": n,
            "d": dim,
            "seed": s,
            "hidden": list(hidden),
            "init": resolved.init,
            "optimizer": resolved.pretrain_optimizer,
            "lr": resolved.pretrain_lr,
            "momentum": 0.9 if resolved.pretrain_optimizer == "sgd" else None,
            "epochs": resolved.pretrain_epochs,
            "batch_size": batch_size,
            "backend": backend,
        }
        if ae_weights is not None:
            aes[i].load_weights(Path(ae_weights).expanduser())
            tags[i] |= {"dec.ae_cache": "loaded", "dec.ae_weights": str(ae_weights)}
        elif context.dry_run:
            train.append(i)
            tags[i]["dec.ae_cache"] = "skipped (dry run)"
        else:
            cache = AECache(Path(context.cache_dir) / "dec", ae_key(x, fields))
            tags[i]["dec.ae_key"] = cache.key
            if cache.exists():
                meta = cache.load(aes[i])
                # The curve of the autoencoder this run uses, so every run shows how it was trained.
                for epoch, loss in enumerate(meta["pretrain_loss"], start=1):
                    contexts[i].log_metric("pretrain_loss", loss, epoch)
                tags[i]["dec.ae_cache"] = "hit"
            else:
                caches[i] = (cache, fields)
                train.append(i)
                tags[i]["dec.ae_cache"] = "miss"
    if train:
        rows = min(batch_size, n) if context.dry_run else n
        epochs = 1 if context.dry_run else resolved.pretrain_epochs
        trained, histories = pretrain(
            backend,
            [aes[i].get_weights() for i in train],
            x_dev[:rows],
            resolved,
            batch_size,
            epochs,
            [seeds[i] for i in train],
            [contexts[i] for i in train],
        )
        for i, weights, history in zip(train, trained, histories, strict=True):
            aes[i].set_weights(weights)
            if i in caches:
                cache, fields = caches[i]
                cache.save(aes[i], {**fields, "pretrain_loss": history})
    for t in tags:
        t["dec.pretrain_s"] = f"{time.perf_counter() - start:.1f}"

    # ---- stage 2: k-means on each seed's embedding initialises its centres -------------------
    from threadpoolctl import threadpool_limits

    n_enc = 2 * len(hidden)
    enc = [ops.convert_to_tensor(w) for w in stacked.stack([ae.get_weights()[:n_enc] for ae in aes])]
    embed = runtime.compiled(backend, stacked.encode)
    embedding = _over_rows(embed, enc, x_dev, n, len(seeds))
    # ``threads`` caps scikit-learn's OpenMP pool too: on a shared CPU its spinning workers
    # otherwise make k-means on 1,797 points take seconds.
    limit = threadpool_limits(params["threads"]) if params["threads"] else contextlib.nullcontext()
    with limit:
        centres, labels_init = _kmeans(
            embedding, seeds, n_clusters, 1 if context.dry_run else params["n_init"]
        )

    # ---- stage 3: self-training on the target distribution -----------------------------------
    start = time.perf_counter()
    orders = None
    if params["order"] == "shuffled":
        # One fixed permutation of the rows per seed, then DEC-keras' sequential batches over it.
        # For data stored class by class (COIL-20 here: object by object) the batches then mix
        # classes, as they did for devyhia, whose loader read the PNGs in file-system (hash) order.
        orders = np.stack([np.random.default_rng(s).permutation(n) for s in seeds]).astype(np.int32)
    params_dev = [*enc, ops.convert_to_tensor(np.stack(centres))]
    labels, stopped, iterations, params_dev = self_train(
        backend,
        params_dev,
        x_dev,
        np.stack(labels_init),
        interval=resolved.update_interval,
        maxiter=1 if context.dry_run else params["maxiter"],
        tol=params["tol"],
        lr=params["lr"],
        batch_size=batch_size,
        contexts=contexts,
        orders=orders,
    )
    cluster_s = f"{time.perf_counter() - start:.1f}"
    embedding = _over_rows(embed, params_dev[:-1], x_dev, n, len(seeds))
    results = []
    for i, ctx in enumerate(contexts):
        tags[i] |= {
            "dec.stopped": stopped[i],
            "dec.iterations": str(iterations[i]),
            "dec.cluster_s": cluster_s,
            "dec.labels": "last target update (as DEC-keras)",
        }
        ctx.progress(1, 1, f"done ({stopped[i]} at iteration {iterations[i]})")
        results.append(
            MethodResult(
                labels=np.asarray(labels[i], dtype=np.int64),
                embedding=np.asarray(ops.convert_to_numpy(embedding[i])),
                tags=tags[i],
            )
        )
    return results


def initial_autoencoders(seeds: Sequence[int], dim: int, hidden: Sequence[int], init: str) -> list[Any]:
    """Each seed's autoencoder as a run of that seed alone builds it: under ``set_random_seed(seed)``
    (then the first seed's state again, as a single run leaves it)."""
    import keras

    from harness_dec.model import autoencoder

    models = []
    for s in seeds:
        keras.utils.set_random_seed(s)
        models.append(autoencoder(dim, hidden, init)[0])
    keras.utils.set_random_seed(seeds[0])
    return models


def pretrain(
    backend: str,
    weights: Sequence[Sequence[np.ndarray]],
    x_dev: Any,
    resolved: presets.Resolved,
    batch_size: int,
    epochs: int,
    seeds: Sequence[int],
    contexts: Sequence[JobContext],
) -> tuple[list[list[np.ndarray]], list[list[float]]]:
    """End-to-end MSE training of the whole autoencoders, shuffled batches (DEC-keras' ``pretrain``,
    which was Keras ``fit(shuffle=True)``); returns each seed's weights and loss per epoch.

    Unlike the DEC paper (greedy layer-wise denoising pretraining), DEC-keras trains all layers at
    once without noise or dropout; so do we. Each epoch is one compiled call; each seed draws its
    own row order every epoch from :func:`clustering.batch_rng`. The epoch loss is the
    batch-size-weighted mean of the batch losses, as Keras' ``fit`` reports it.
    """
    from keras import ops

    from harness_dec import stacked

    # SGD(lr, momentum 0.9), or Keras' Adam defaults (epsilon 1e-7, as Keras >= 2.1.3 that DEC-keras ran on)
    optimizer, run = stacked.runner(
        backend, stacked.mse_loss, resolved.pretrain_optimizer, resolved.pretrain_lr, False
    )
    params = [ops.convert_to_tensor(w) for w in stacked.stack(weights)]
    opt_vars = optimizer.init(params)
    n, count = int(x_dev.shape[0]), len(seeds)
    rngs = [clustering.batch_rng(s) for s in seeds]
    active = ops.ones((count,), dtype="bool")
    w_dev = None
    histories: list[list[float]] = [[] for _ in seeds]

    def log(epoch: int, loss_sum: Any) -> None:
        losses = ops.convert_to_numpy(loss_sum) / n
        for i, ctx in enumerate(contexts):
            histories[i].append(float(losses[i]))
            ctx.log_metric("pretrain_loss", float(losses[i]), epoch)
            ctx.progress(epoch, epochs, f"pretraining, loss {losses[i]:.4g}")

    pending = None
    for epoch in range(1, epochs + 1):
        idx, w = clustering.epoch_batches(np.stack([rng.permutation(n) for rng in rngs]), batch_size)
        if w_dev is None:
            w_dev = ops.convert_to_tensor(w)
        params, opt_vars, loss_sum, _ = run(
            params, opt_vars, active, (x_dev,), ops.convert_to_tensor(idx), w_dev
        )
        if pending is not None:  # read the previous epoch's loss while this one runs
            log(epoch - 1, pending)
        pending = loss_sum
    if pending is not None:
        log(epochs, pending)
    return [stacked.unstack(params, i) for i in range(count)], histories


def self_train(
    backend: str,
    params: list,
    x_dev: Any,
    labels_init: np.ndarray,
    *,
    interval: int,
    maxiter: int,
    tol: float,
    lr: float,
    batch_size: int,
    contexts: Sequence[JobContext],
    orders: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[str], list[int], list]:
    """DEC-keras' clustering loop for S stacked seeds; returns per seed (labels of its last target
    update, why it stopped, its last iteration) and the final parameters.

    ``params`` is the stacked encoder plus the centres (S, K, E). Every ``interval`` iterations:
    Q on all the data, P and the labels on the device, the labels (one host transfer) scored and
    compared per seed; a seed whose labels changed less than ``tol`` stops there and is frozen.
    In between, the ``interval`` KL steps on sequential batches (each seed's own row order with
    ``orders``) run as one compiled call. Labels are always in the data's row order.
    """
    from keras import ops

    from harness_dec import stacked

    n, count = len(labels_init[0]), len(contexts)
    optimizer, run = stacked.runner(backend, stacked.kld_loss, "sgd", lr, True)  # momentum 0.9
    opt_vars = optimizer.init(params)
    assign = runtime.compiled(backend, _assign)
    labels_last = [np.asarray(lab) for lab in labels_init]
    stopped, iterations = ["maxiter"] * count, [maxiter - 1] * count
    active = np.ones(count, dtype=bool)
    last_loss = np.zeros(count, dtype=np.float32)
    iteration = 0
    while iteration < maxiter:
        q = ops.concatenate(_chunks(assign, params, x_dev, n, count), axis=1)
        p_flat = ops.reshape(stacked.target_distribution(q), (count * n, -1))
        labels_now = ops.convert_to_numpy(ops.argmax(q, axis=2))  # the one host round trip
        for i in np.flatnonzero(active):
            changed = clustering.changed_fraction(labels_now[i], labels_last[i])
            labels_last[i] = labels_now[i]
            # DEC-keras' log row: the loss is that of the last batch before this update (at
            # iteration 0 it printed its initial 0, which no batch had: not logged here).
            loss = {"loss": float(last_loss[i])} if iteration > 0 else {}
            contexts[i].evaluate(labels_now[i], step=iteration, delta_label=changed, **loss)
            contexts[i].progress(iteration, maxiter, f"clustering, {changed:.2%} changed")
            if clustering.should_stop(iteration, changed, tol):
                stopped[i], iterations[i], active[i] = "tol", iteration, False
        if not active.any():
            break
        steps = min(interval, maxiter - iteration)
        idx, w = clustering.sequential_batches(iteration, steps, batch_size, n, orders, count)
        params, opt_vars, _, loss_dev = run(
            params,
            opt_vars,
            ops.convert_to_tensor(active),
            (x_dev, p_flat),
            ops.convert_to_tensor(idx),
            ops.convert_to_tensor(w),
        )
        last_loss = np.where(active, ops.convert_to_numpy(loss_dev), last_loss)
        iteration += steps
    return labels_last, stopped, iterations, list(params)


def _kmeans(embedding: np.ndarray, seeds: Sequence[int], n_clusters: int, n_init: int) -> tuple[list, list]:
    """Each seed's k-means (seeded by it) on its own embedding: (centres, labels) per seed."""
    from sklearn.cluster import KMeans

    centres, labels = [], []
    for i, s in enumerate(seeds):
        kmeans = KMeans(
            n_clusters,
            init="k-means++",
            n_init=n_init,
            max_iter=300,
            tol=1e-4,
            algorithm="lloyd",
            random_state=s,
        )  # sklearn 0.19's defaults spelled out (its 'auto' ran elkan: same fixed points, other speed)
        labels.append(kmeans.fit_predict(embedding[i]))
        centres.append(kmeans.cluster_centers_.astype(np.float32))
    return centres, labels


def _assign(params: list, x_chunk: Any) -> Any:
    from harness_dec import stacked

    return stacked.soft_assign(stacked.encode(params[:-1], x_chunk), params[-1])


def _chunks(fn: Any, params: list, x_dev: Any, n: int, count: int) -> list:
    """``fn(params, rows)`` over all rows in chunks of :data:`PREDICT_ROWS` rows x seeds."""
    rows = max(1024, PREDICT_ROWS // count)
    return [fn(params, x_dev[start : min(start + rows, n)]) for start in range(0, n, rows)]


def _over_rows(fn: Any, params: list, x_dev: Any, n: int, count: int) -> np.ndarray:
    """``fn`` over all rows, as one host array (S, N, ...)."""
    from keras import ops

    return np.concatenate(
        [ops.convert_to_numpy(part) for part in _chunks(fn, params, x_dev, n, count)], axis=1
    )
