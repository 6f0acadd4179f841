"""Plugins used by the tests (loaded with ``--plugin harness_test_plugins``).

``flaky`` fails on the seeds listed in its ``fail_seeds`` parameter and otherwise runs k-means
(one init) on the data, so a sweep has a real mix of finished and failed runs. ``crash`` kills its
own worker process, as an out-of-memory kill would. ``curves`` logs curves (one of its own) and progress, and warns.
``stacked`` can train several seeds in one call (``--batch-seeds``) and tags each run with the
call it was trained in and the GPUs it could see. ``breach`` breaks the output contract; ``noisy``
declares noise labels and returns some.
"""

from __future__ import annotations

import os
import signal

import numpy as np

from harness import MethodResult, MethodSpec, Param, hookimpl


def _kmeans(x, n_clusters, seed):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit_predict(x)


def flaky(x, *, n_clusters, seed, params, context):
    if str(seed) in params["fail_seeds"].split(","):
        raise RuntimeError(f"flaky fails on seed {seed} as asked")
    return MethodResult(labels=_kmeans(x, n_clusters, seed))


def slow(x, *, n_clusters, seed, params, context):
    """Sleeps $HARNESS_TEST_SLOW_SECONDS (not a parameter: not part of the run key), so that a
    test can kill a sweep while this job runs and then resume the same sweep quickly."""
    import time

    time.sleep(float(os.environ.get("HARNESS_TEST_SLOW_SECONDS", "0")))
    return MethodResult(labels=_kmeans(x, n_clusters, seed))


def crash(x, *, n_clusters, seed, params, context):
    os.kill(os.getpid(), signal.SIGKILL)


def curves(x, *, n_clusters, seed, params, context):
    import warnings

    labels = _kmeans(x, n_clusters, seed)
    for _ in range(2):  # shown once
        warnings.warn(f"curves: [seed {seed}] looks suspicious", stacklevel=1)
    warnings.warn("curves: an old API", DeprecationWarning, stacklevel=1)  # for library developers: not shown
    for step in range(3):
        context.log_metric("loss", 1.0 / (step + 1), step)
        context.log_metric("margin", 0.1 * step, step)  # a curve of its own, beside the built-in names
        context.progress(step + 1, 3, "fake epochs")
    context.evaluate(labels, step=3)
    from sklearn.decomposition import PCA

    embedding = PCA(n_components=10, random_state=seed).fit_transform(x).astype(np.float32)
    return MethodResult(labels=labels, embedding=embedding, tags={"note": "curves"})


def odd(x, *, n_clusters, seed, params, context):
    """Returns what a buggy method might: float labels (integral or not), a non-finite embedding."""
    labels = _kmeans(x, n_clusters, seed).astype(np.float64)
    if params["labels"] == "fractional":
        labels = labels / 10
    embedding = x[:, :4].astype(np.float32)
    if params["embedding"] == "nan":
        embedding[:3] = np.nan
    return MethodResult(labels=labels, embedding=embedding)


def breach(x, *, n_clusters, seed, params, context):
    """Breaks the output contract as asked: one cluster per sample, -1 labels, or a bare list."""
    labels = _kmeans(x, n_clusters, seed)
    if params["output"] == "one_per_sample":
        return MethodResult(labels=np.arange(len(x)))
    if params["output"] == "minus_one":
        labels[:5] = -1
        return MethodResult(labels=labels)
    return list(labels)


def noisy(x, *, n_clusters, seed, params, context):
    """Declares noise labels and leaves the first 10 points unclustered."""
    labels = _kmeans(x, n_clusters, seed)
    labels[:10] = -1
    return MethodResult(labels=labels)


def stacked(x, *, n_clusters, seed, params, context):
    return stacked_seeds(x, n_clusters=n_clusters, seeds=[seed], params=params, contexts=[context])[0]


def stacked_seeds(x, *, n_clusters, seeds, params, contexts):
    import uuid

    task = uuid.uuid4().hex  # one per call: which seeds were trained together
    results = []
    for seed, context in zip(seeds, contexts, strict=True):
        assert context.seed == seed
        labels = _kmeans(x, n_clusters, seed)
        context.log_metric("seed_curve", float(seed), 0)
        context.progress(1, 1, f"seed {seed}")
        tags = {"task": task, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "unset")}
        results.append(MethodResult(labels=labels, tags=tags))
    return results


@hookimpl
def harness_methods():
    return [
        MethodSpec(
            "flaky",
            flaky,
            params=(
                Param("fail_seeds", str, "1", "seeds that fail, comma-separated"),
                Param("note", str, "", "free text, recorded but not part of the run key", in_run_key=False),
            ),
        ),
        MethodSpec("crash", crash),
        MethodSpec("curves", curves),
        MethodSpec("slow", slow),
        MethodSpec(
            "odd",
            odd,
            params=(
                Param("labels", str, "integral", "float labels: integral or fractional"),
                Param("embedding", str, "finite", "finite or nan"),
            ),
        ),
        MethodSpec("stacked", stacked, fit_predict_seeds=stacked_seeds, min_size=4),
        MethodSpec(
            "breach",
            breach,
            params=(
                Param(
                    "output",
                    str,
                    "list",
                    "how to break the contract",
                    choices=("one_per_sample", "minus_one", "list"),
                ),
            ),
        ),
        MethodSpec("noisy", noisy, noise_labels=True),
    ]
