"""k-means on the scaled pixels: the baseline row of every deep clustering table.

scikit-learn's KMeans with k-means++ seeding and ``n_init=20`` passed explicitly: since
scikit-learn 1.4 the default is ``"auto"``, a single initialisation for k-means++, which makes
the baseline worse and far noisier than the published pixel k-means numbers.
"""

from __future__ import annotations

import numpy as np

from harness import JobContext, MethodResult, MethodSpec, Param, hookimpl

PARAMS = (
    Param("n_init", int, 20, "k-means++ restarts; the lowest-inertia solution is kept", low=1),
    Param("max_iter", int, 300, "Lloyd iterations per restart", low=1),
    Param("tol", float, 1e-4, "relative tolerance on the centre shift that ends a restart", low=0),
    Param("algorithm", str, "lloyd", "scikit-learn's k-means algorithm", choices=("lloyd", "elkan")),
)


def fit_predict(
    x: np.ndarray, *, n_clusters: int, seed: int, params: dict, context: JobContext
) -> MethodResult:
    from sklearn import __version__ as sklearn_version
    from sklearn.cluster import KMeans

    context.progress(0, 1, f"k-means, {params['n_init']} restarts")
    model = KMeans(
        n_clusters=n_clusters,
        init="k-means++",
        n_init=1 if context.dry_run else params["n_init"],
        max_iter=1 if context.dry_run else params["max_iter"],
        tol=params["tol"],
        algorithm=params["algorithm"],
        random_state=seed,
    )
    labels = model.fit_predict(x)
    context.progress(1, 1, "done")
    return MethodResult(
        labels=labels,
        tags={
            "device": "cpu",
            "version.scikit-learn": sklearn_version,
            "kmeans.inertia": f"{model.inertia_:.6g}",
            "kmeans.n_iter": str(model.n_iter_),
        },
    )


@hookimpl
def harness_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="kmeans",
            fit_predict=fit_predict,
            params=PARAMS,
            input="flat",
            framework="scikit-learn",
            shares_process=True,  # no GPU, no framework state: Ray may reuse its workers
            description="k-means (k-means++, n_init=20) on the scaled pixels",
        )
    ]
