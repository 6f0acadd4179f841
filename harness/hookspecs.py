"""Hook specifications: the whole contract between harness and its plugins.

A plugin is a module (or any object) with functions decorated by :data:`harness.hookimpl`, named
after the hooks below, published under the ``harness`` entry-point group::

    [project.entry-points.harness]
    my_method = "my_package.my_module"

Hooks are called with keyword arguments only; an implementation may accept fewer arguments than
its specification (so a hook can gain arguments without breaking plugins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from harness.types import DatasetFormat, DatasetSpec, MethodSpec, MetricSpec

PROJECT = "harness"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------------------
# Registration: called once per process when the plugin manager is built, in the CLI parent and
# again in every worker. Keep these cheap: import your framework inside ``fit_predict``, not here.
# -------------------------------------------------------------------------------------------------


@hookspec
def harness_methods() -> list[MethodSpec] | None:
    """Return the clustering methods this plugin provides.

    Called when the plugin manager is built. Each :class:`~harness.types.MethodSpec` names the
    method, declares its parameters (type, default, bounds, help) so that the core can validate a
    sweep before any job runs, and gives the ``fit_predict`` callable that a worker process calls.
    A name already provided by another plugin is an error naming both plugins.

    :returns: a list of method specs (empty or ``None`` if the plugin offers none).
    """


@hookspec
def harness_datasets() -> list[DatasetSpec] | None:
    """Return the datasets this plugin provides.

    Called when the plugin manager is built. Each :class:`~harness.types.DatasetSpec` names the
    dataset, its classes and native image shape, and two callables: ``fetch(root, download)``
    checks the canonical files under ``root`` (downloading them first when asked) and is called
    for every dataset of a sweep before any job starts; ``load(root)`` verifies and reads them in
    the worker. :class:`~harness.types.DatasetSpec` says what each must return.
    A name already provided by another plugin is an error naming both plugins.

    :returns: a list of dataset specs (empty or ``None`` if the plugin offers none).
    """


@hookspec
def harness_metrics() -> list[MetricSpec] | None:
    """Return the final scores this plugin computes on every finished run.

    Called when the plugin manager is built. Each :class:`~harness.types.MetricSpec` names the
    metric, says whether it compares the labels with the truth (``external``) or with the
    method's embedding or input (``internal``, label-free), which way is better, and gives the
    ``score`` callable. The core calls it in the worker after the method has returned, the same
    way for every method, and logs the value beside ACC and NMI; ``harness report --metrics NAME``
    computes it after the fact, from the stored arrays, for runs that were scored without it. The
    built-in metrics (ACC, NMI, ARI, AMI, ...) come through this hook too, from
    :mod:`harness.metrics`. A metric whose ``score`` raises or returns no finite number is left
    out of that run, with a warning on the run; the run itself finishes.
    A name already provided by another plugin is an error naming both plugins.

    :returns: a list of metric specs (empty or ``None`` if the plugin offers none).
    """


@hookspec
def harness_dataset_formats() -> list[DatasetFormat] | None:
    """Return the file formats users may declare as datasets in a sweep's config.

    Called when the plugin manager is built. A :class:`~harness.types.DatasetFormat` names the
    format (the value of a declaration's ``format`` key) and turns a declaration into a
    :class:`~harness.types.DatasetSpec`; the datasets it builds are provided by this plugin (its
    distribution and source are their identity, with the digests of the declared files).
    A format name already provided by another plugin is an error naming both plugins.

    :returns: a list of formats (empty or ``None`` if the plugin offers none).
    """
