"""The run record: the names under which a job's run is written and read back.

The MLflow tracker and the offline journal write these names; the reports' reader and the journal
read them. Keeping them in one module means a rename cannot leave a reader behind.
"""

from __future__ import annotations

# -- what a run is ------------------------------------------------------------------------------
KIND = "harness.kind"
"""``"sweep"`` for a sweep's parent run, ``"job"`` for a job's run."""
RUN_KEY = "harness.run_key"
SWEEP = "harness.sweep"
PARENT = "mlflow.parentRunId"
METHOD = "harness.method"
DATASET = "harness.dataset"
DRY_RUN = "harness.dry_run"
"""``"true"`` on the runs of ``--dry-run`` smoke tests: reports leave them out."""
CONFIGURATION = "harness.configuration"
"""The job's method with the values of the parameters its sweep varies (``kmeans (n_init=2)``):
what the MLflow UI groups runs by."""
UNKEYED = "harness.unkeyed"
"""Method parameters outside the run key, comma-separated (they never split configurations)."""
ERROR = "harness.error"
WARNINGS = "harness.warnings"
"""The warnings a job's method raised, one per line (absent when there were none)."""
PID = "harness.pid"
HOST = "host"
BATCHED_SEEDS = "harness.batched_seeds"

# -- what produced it (implementation identity) -------------------------------------------------
METHOD_PLUGIN = "harness.method_plugin"
"""The method's distribution and version (``harness-dec-0.1.0``), or its plugin name."""
DATASET_PLUGIN = "harness.dataset_plugin"
METHOD_SOURCE = "harness.method_source"
"""Digest of the source files of the package that holds the method's ``fit_predict``."""
DATASET_SOURCE = "harness.dataset_source"
"""Digest of the source files of the package that holds the dataset's ``load``."""
DATASET_FILES = "harness.dataset_files"
"""Digest of the canonical files' checksums the dataset declares (``-`` where it declares none)."""
METHOD_IDENTITY = "harness.method_identity"
"""One digest of the method's distribution, version and source: part of the run key."""
DATASET_IDENTITY = "harness.dataset_identity"
"""One digest of the dataset's distribution, version, loader source and file checksums: part of
the run key."""
CORE_IDENTITY = "harness.core_identity"
"""The harness version and a digest of its scoring and preprocessing code: part of the run key."""
DATA_DIGEST = "harness.data_digest"
"""Digest of the array and labels the method received (after resizing and scaling)."""
GIT_COMMIT = "harness.git_commit"
GIT_DIRTY = "harness.git_dirty"
PARAM_DEFAULTS = "harness.param_defaults"
"""JSON: the method's declared default of every keyed parameter, as logged (``None`` is
``"none"``), so that a report can name a configuration by what departs from the defaults."""
NOISE_LABELS = "harness.noise_labels"
"""``"true"`` on runs of methods that declare noise labels (-1)."""

METRIC_IDENTITIES = "harness.metric_identities"
"""JSON: metric name → digest of the metric plugin's code that scored the run
(:func:`harness.identity.metric_identity`); the core's own metrics are covered by ``CORE_IDENTITY``."""

IDENTITY_TAGS = (METHOD_IDENTITY, DATASET_IDENTITY, CORE_IDENTITY)
"""What a table never pools across: runs that differ in any of these (or in ``DATA_DIGEST``)."""

# -- how the MLflow UI opens an experiment -------------------------------------------------------
EXPERIMENT_KIND = "mlflow.experimentKind"
"""MLflow 3's experiment type; ``custom_model_development`` is a model-training experiment, not a
GenAI one (MLflow 3.17 takes the type from the page's ``workflowType`` instead: see ``VIEW_KEY``)."""
VIEW_KEY = "harness"
"""The experiment's shared view of the runs table (tag ``mlflow.sharedViewState.harness``), opened
by ``#/experiments/<id>/runs?workflowType=machine_learning&viewStateShareKey=harness``."""
VIEW_TAG = "mlflow.sharedViewState." + VIEW_KEY

# -- imports of offline journals -----------------------------------------------------------------
IMPORTED_FROM = "harness.imported_from"
IMPORTED_RECORD = "harness.imported_record"
"""On an imported run: which record it came from (run key and end time), so it is imported once."""

CURVE_PREFIX = "curve/"
"""Step metrics from methods are logged under this prefix, apart from the final scores."""
