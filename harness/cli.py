"""The ``harness`` command line: run, list, data, ui."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import config as config_mod
from harness.errors import ExitCode, UsageError
from harness.params import describe
from harness.plugins import PluginError, Registry, check_names, load_registry

if TYPE_CHECKING:
    from harness.executor import Executor
    from harness.gpus import GpuSlots
    from harness.recording import Recorder
    from harness.sweep import Sweep
    from harness.types import MetricSpec
    from harness.worker import WorkerSettings

EPILOG = """\
examples:
  harness run                                   the quick sweep: every method on digits, seeds 0-2
  harness run --methods kmeans --datasets mnist,usps --seeds 0-9
  harness run --config configs/kmeans-coil20-sizes.yaml --param kmeans.n_init=10
  harness run --executor ray --ray-address auto   jobs as Ray tasks on a running Ray cluster
  harness run --executor slurm --slurm-partition gpu --slurm-time 4:00:00 --gpus-per-job 1
                                                SLURM batch jobs (from a login node)
  harness list                                  methods, datasets, parameters, providers
  harness data --download mnist                 fetch and verify a dataset (needs a network)
  harness report --format latex --out table.tex    a paper table from the tracked runs
  harness report --stats --out results/table.md    + Friedman, post-hoc tests, CD diagrams beside it
  harness plot --out figures                    metric vs size, seed spread, sensitivity, curves, t-SNE
  harness ui                                    browse the runs in the MLflow UI
  harness run --offline out/ && harness import out/    run without MLflow, log the runs later
"""


# -------------------------------------------------------------------------------------------------
# the parser: one function per subcommand, each shared option declared once
# -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Benchmark clustering methods across datasets, seeds and input sizes; "
        "results go to MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in (
        _add_run_parser,
        _add_list_parser,
        _add_data_parser,
        _add_report_parser,
        _add_plot_parser,
        _add_import_parser,
        _add_ui_parser,
    ):
        add_parser(sub)
    for command in sub.choices.values():  # last in every command's help
        command.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def _add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run a sweep (the quick default sweep when given no options)",
        description="Run every method on every dataset for every input size and seed. Options override "
        "the config file, which overrides the quick default sweep (configs/quick.yaml). Jobs that "
        "already finished in the experiment are skipped.",
    )
    _add_sweep_options(run)
    _add_data_dir_option(run)
    run.add_argument(
        "--cache-dir", metavar="DIR", help="cache of expensive stages such as pretrained autoencoders"
    )
    _add_tracking_uri_option(run, first="the config file's tracking_uri, else ")
    _add_experiment_option(run, first="the config file's experiment, else ")
    _add_placement_options(run)
    run.add_argument(
        "--offline",
        metavar="DIR",
        help="record the sweep as files in DIR instead of MLflow (a machine without the tracking "
        "store); log them into MLflow later with `harness import DIR`",
    )
    run.add_argument("--rerun", action="store_true", help="run jobs again even if they already finished")
    run.add_argument(
        "--download", action="store_true", help="download missing datasets first (needs a network)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="ask methods to stop after one batch per phase (a smoke test; its runs are tagged "
        "harness.dry_run, never count as the real jobs and are left out of reports)",
    )
    _add_plugin_options(run)


def _add_sweep_options(run: argparse.ArgumentParser) -> None:
    """What a sweep runs: the keys of a config file, as flags."""
    run.add_argument(
        "--config", metavar="FILE", help="YAML sweep file (keys: " + ", ".join(config_mod.KEYS) + ")"
    )
    run.add_argument(
        "--methods", metavar="LIST", help="comma-separated method names, or 'all' (default: all)"
    )
    run.add_argument("--datasets", metavar="LIST", help="comma-separated dataset names (default: digits)")
    run.add_argument("--seeds", metavar="SEEDS", help="seeds such as 0-9 or 0,3,5-7 (default: 0-2)")
    run.add_argument(
        "--sizes", metavar="SIZES", help="input sizes in pixels per side, e.g. 28,32, or 'native' (default)"
    )
    run.add_argument(
        "--resize-filter", choices=config_mod.RESIZE_FILTERS, help="filter used to resize (default: bilinear)"
    )
    run.add_argument(
        "--channels",
        choices=config_mod.CHANNELS,
        help="native (default): colour datasets keep their 3 channels; grey: convert them to one "
        "luma channel (recorded on each run, part of its run key)",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="METHOD.NAME=VALUE",
        help="set a method parameter, e.g. kmeans.n_init=10 (repeatable; see `harness list`)",
    )


def _add_placement_options(run: argparse.ArgumentParser) -> None:
    """Where and how a sweep's jobs run."""
    run.add_argument("--device", metavar="DEVICE", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="jobs at a time (default: 1 locally; with Ray, as many as the cluster has CPUs for; "
        "with SLURM, the most of the sweep's jobs in the queue at once, default no limit)",
    )
    run.add_argument(
        "--executor",
        choices=config_mod.EXECUTORS,
        help="where jobs run: local worker processes (default), Ray tasks or SLURM batch jobs",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to use: auto or HOST:PORT (default: start a local Ray instance)",
    )
    _add_slurm_options(run)
    run.add_argument(
        "--gpus-per-job",
        type=float,
        metavar="G",
        help="GPUs each job needs: 0.5 lets two jobs share a GPU, 1 gives each its own (default: "
        "local workers take the visible GPUs in turn, without limit; Ray tasks and SLURM jobs ask "
        "for none; SLURM gives whole GPUs)",
    )
    run.add_argument(
        "--batch-seeds",
        type=int,
        nargs="?",
        const=0,
        metavar="S",
        help="train the seeds of one method/dataset/size together as one stacked model, S at most "
        "(the flag alone, or 0: all of them), where the method supports it; each seed is still "
        "its own run",
    )


def _add_slurm_options(run: argparse.ArgumentParser) -> None:
    """What SLURM jobs ask for (``--executor slurm``); the config file's ``slurm_*`` keys as flags."""
    run.add_argument("--slurm-partition", metavar="NAME", help="SLURM partition (default: the cluster's)")
    run.add_argument(
        "--slurm-time",
        metavar="TIME",
        help="time limit of each job, such as 30 (minutes), 4:00:00 or 1-12 (default: the partition's)",
    )
    run.add_argument("--slurm-account", metavar="NAME", help="SLURM account to charge (default: yours)")
    run.add_argument(
        "--slurm-folder",
        metavar="DIR",
        help="folder on the filesystem the compute nodes share, for the jobs' scripts, logs and "
        f"results (default: ./{config_mod.DEFAULT_SLURM_FOLDER}); more #SBATCH lines: the config "
        "file's slurm_sbatch list",
    )


def _add_list_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lst = sub.add_parser("list", help="show the installed methods and datasets, with their parameters")
    lst.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_own_datasets_option(lst)
    _add_plugin_options(lst)


def _add_data_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = sub.add_parser("data", help="check the dataset files, or download them")
    data.add_argument("names", nargs="*", help="datasets (default: all)")
    _add_own_datasets_option(data)
    _add_data_dir_option(data)
    data.add_argument("--download", action="store_true", help="download what is missing (needs a network)")
    _add_plugin_options(data)


def _add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="a paper table (LaTeX, Markdown or CSV) from the tracked runs",
        description="One table from the runs in MLflow: rows are datasets (x input size where it varies), "
        "columns methods; each cell mean ± sample std over the finished seeds, best in bold, second "
        "underlined. CSV is tidy, one row per run.",
    )
    _add_store_options(report)
    report.add_argument(
        "--format", choices=("latex", "markdown", "csv"), default="markdown", help="default: markdown"
    )
    report.add_argument(
        "--metrics",
        default="acc,nmi_geometric",  # harness.metrics.DEFAULT_TABLE_METRICS (not imported: scikit-learn is slow)
        metavar="LIST",
        help="comma-separated metrics (`harness list` shows them: acc, nmi_geometric, nmi_arithmetic, ari, "
        "ami, fmi, homogeneity, completeness, v_measure, purity, f1_macro, silhouette_embedding and "
        "the plugins'), or runtime_s (default: acc,nmi_geometric). Runs recorded without a metric get "
        "it computed from their stored labels and embedding",
    )
    report.add_argument(
        "--compare",
        metavar="A,B",
        help="also: Wilcoxon signed-rank test of method A against B over paired seeds, and average "
        "ranks; to standard error and, with --out FILE, to FILE's sibling with suffix .compare.txt "
        "(table.tex -> table.compare.txt). A and B: methods or configurations, as in the table",
    )
    report.add_argument(
        "--stats",
        action="store_true",
        help="also: over all columns, per metric, the Friedman test over the dataset x size blocks "
        "(and over dataset x size x seed where the columns ran the same seeds), post-hoc Wilcoxon-Holm "
        "and Nemenyi, average ranks, the matched-pairs rank-biserial effect size of each pair, and per "
        "cell the median with a bootstrap 95%% interval; to standard error and, with --out FILE, beside "
        "FILE: FILE.stats.txt, .stats-tests.csv, .stats-pairs.csv, .stats-cells.csv and a "
        "critical-difference diagram per metric, .cd-METRIC.png/.pdf (.cd-METRIC-seeds.png/.pdf for "
        "the seed blocks); table.md -> table.stats.txt, table.cd-acc.png",
    )
    report.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    _add_data_dir_option(report)
    _add_plugin_options(report)


def _add_plot_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plot = sub.add_parser(
        "plot",
        help="figures (PNG and PDF) from the tracked runs",
        description="Figures from the runs in MLflow, each as PNG and PDF in --out: ACC and NMI against "
        "input size per method (mean ± sample std band, one dot per seed; where a dataset ran at several "
        "sizes; one y range per metric), a box per method × dataset with every seed, a sensitivity "
        "figure per method parameter that ran at several values (ACC and NMI against the values, one "
        "panel per dataset), training curves per method, dataset and size (every curve the method "
        "logged; one line per seed) and a t-SNE of the learned embedding coloured by class and by "
        "cluster (clusters in their matched class's colour). File names are slugs of the configuration "
        "names; titles keep the names.",
    )
    _add_store_options(plot)
    plot.add_argument("--out", metavar="DIR", default="figures", help="output folder (default: figures)")
    plot.add_argument("--no-tsne", action="store_true", help="skip the t-SNE plots of embeddings")


def _add_import_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser(
        "import",
        help="log a sweep recorded with `harness run --offline DIR` into MLflow",
        description="Log every job recorded in DIR (by `harness run --offline DIR`) into the tracking "
        "store as ordinary runs under one sweep run. Jobs already finished there are skipped.",
    )
    imp.add_argument("dir", metavar="DIR", help="the folder given to --offline")
    _add_tracking_uri_option(imp)
    _add_experiment_option(imp, first="the recorded sweep's, else ")
    imp.add_argument("--rerun", action="store_true", help="import jobs even if they already finished there")


def _add_ui_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = sub.add_parser("ui", help="open the MLflow UI on the tracking store")
    _add_tracking_uri_option(ui)
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    """Which tracked runs ``report`` and ``plot`` read."""
    _add_tracking_uri_option(parser)
    _add_experiment_option(parser)
    parser.add_argument("--methods", metavar="LIST", help="only these methods (comma-separated)")
    parser.add_argument("--datasets", metavar="LIST", help="only these datasets (comma-separated)")
    parser.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="only these seeds, such as 0-4 or 0,3,5-7 (default: all); a row's seed set is then the "
        "selected seeds any of its columns ran",
    )
    parser.add_argument(
        "--all-identities",
        action="store_true",
        help="also show runs of older identities (earlier method, dataset or harness code, or other "
        "data) of a configuration, each as a column of its own named by the digest that differs, "
        "e.g. 'kmeans [method 3f2a91]'; by default only each configuration's newest identity per "
        "dataset and size is shown and the runs left out are counted",
    )


def _add_tracking_uri_option(parser: argparse.ArgumentParser, first: str = "") -> None:
    """``--tracking-uri``, resolved by :func:`harness.config.resolve_tracking_uri` in every command;
    ``first`` names what the command consults before MLflow's variable."""
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default: {first}$MLFLOW_TRACKING_URI, else "
        f"{config_mod.DEFAULT_TRACKING_URI})",
    )


def _add_experiment_option(parser: argparse.ArgumentParser, first: str = "") -> None:
    """``--experiment``, resolved by :func:`harness.config.resolve_experiment` in every command;
    ``first`` names what the command consults before the default."""
    parser.add_argument(
        "--experiment",
        metavar="NAME",
        help=f"MLflow experiment (default: {first}{config_mod.DEFAULTS['experiment']})",
    )


def _add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="datasets folder (default: $HARNESS_DATA_DIR or ~/.cache/harness/data)",
    )


class _CommaList(argparse.Action):
    """A repeatable option whose values are comma-separated lists: ``--no-plugin a,b --no-plugin c``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        names = [name.strip() for name in str(values).split(",")]  # "" is left to the name check
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), *names])


def _add_plugin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also load the plugin module MODULE (an import path), like pytest's -p",
    )
    parser.add_argument(
        "--no-plugin",
        action=_CommaList,
        default=[],
        metavar="NAMES",
        help="do not load the plugins NAMES (comma-separated, repeatable; see `harness list` for the names)",
    )


def _add_own_datasets_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="also the datasets this sweep file declares under own_datasets"
    )


def _registry(args: argparse.Namespace) -> Registry:
    """The installed plugins' registry, plus the datasets ``--config`` declares (list, data)."""
    registry = load_registry(blocked=args.no_plugin, extra_modules=args.plugin)
    if args.command in ("list", "data") and args.config:
        registry = config_mod.declare_own_datasets(registry, config_mod.read_config(args.config), args.config)
    return registry


def _warn_broken(registry: Registry) -> None:
    """A broken plugin that the command does not need: one line each, and the command goes on."""
    for problem in registry.problems():
        print(f"harness: warning: {problem}", file=sys.stderr)


# -------------------------------------------------------------------------------------------------
# run
# -------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> ExitCode:
    from harness.console import ConsoleReporter
    from harness.gpus import worker_environment
    from harness.runner import fetch_datasets, run_sweep
    from harness.worker import WorkerSettings

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.gpus_per_job is not None and not args.gpus_per_job > 0:
        raise UsageError(f"--gpus-per-job: expected a number > 0 such as 1 or 0.5, got {args.gpus_per_job}")
    registry = _registry(args)
    file_config = config_mod.read_config(args.config) if args.config else {}
    registry = config_mod.declare_own_datasets(registry, file_config, args.config)
    overrides = {
        "methods": args.methods,
        "datasets": args.datasets,
        "seeds": args.seeds,
        "sizes": args.sizes,
        "resize_filter": args.resize_filter,
        "channels": args.channels,
        "data_dir": args.data_dir,
        "tracking_uri": args.tracking_uri,
        "experiment": args.experiment,
        "device": args.device,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "slurm_partition": args.slurm_partition,
        "slurm_time": args.slurm_time,
        "slurm_account": args.slurm_account,
        "slurm_folder": args.slurm_folder,
        "params": config_mod.parse_param_flags(args.param) or None,
    }
    sweep = config_mod.build_sweep(registry, file_config, overrides)
    slurm = config_mod.slurm_settings(file_config, overrides)
    _warn_broken(registry)
    if args.batch_seeds is not None and args.batch_seeds < 0:
        raise UsageError(
            f"--batch-seeds: expected a number of seeds >= 1 (0 or no value: all seeds), got {args.batch_seeds}"
        )
    batch_seeds = 1 if args.batch_seeds is None else (args.batch_seeds or len(sweep.seeds))
    env, gpu_slots = worker_environment(sweep.device, sweep.executor, args.jobs or 1, args.gpus_per_job)
    _warn_unused_gpu(registry, sweep)
    settings = WorkerSettings(
        data_dir=sweep.data_dir,
        cache_dir=args.cache_dir,
        device=sweep.device,
        blocked_plugins=tuple(args.no_plugin),
        extra_plugins=tuple(args.plugin),
        dry_run=args.dry_run,
        env=env,
        own_datasets=sweep.own_datasets,
        own_datasets_dir=str(config_mod.own_datasets_dir(args.config)),
    )
    # `kill` (SIGTERM) stops a sweep as Ctrl-C does: workers stopped, their runs marked KILLED.
    # SIGINT too, even where it was inherited as ignored (a shell starts background jobs so).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # a bad Ray address or a missing dataset file is one line before any store exists
    with _executor(sweep, registry, settings, args, gpu_slots, slurm) as executor:
        fetch_datasets(registry, sweep, download=args.download)
        recorder, where, next_step = _recorder(sweep, args.offline)
        reporter = ConsoleReporter(next_step=next_step, dry_run=args.dry_run, debug=args.debug)
        report = run_sweep(
            sweep,
            registry,
            recorder=recorder,
            executor=executor,
            listeners=[reporter],
            where=where,
            dry_run=args.dry_run,
            batch_seeds=batch_seeds,
            rerun=args.rerun,
        )
    if report.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.JOBS_FAILED if report.failed else ExitCode.OK


def _warn_unused_gpu(registry: Registry, sweep: Sweep) -> None:
    """One line per method whose installed framework cannot use the GPU this machine shows (a
    CPU-only build would otherwise train for hours on the CPU without a word): said before any job."""
    from harness.gpus import visible_gpus

    if sweep.device == "cpu" or sweep.executor != "local":
        return  # Ray's workers are elsewhere: each job's device tag (and warning) tells
    checks = [registry.method(m) for m in sweep.methods if registry.method(m).gpu_check is not None]
    if not checks or not visible_gpus():
        return
    for spec in checks:
        assert spec.gpu_check is not None
        problems = {spec.gpu_check(params, sweep.device) for params in sweep.configurations(spec.name)}
        for problem in sorted(p for p in problems if p):  # once per distinct line, not per configuration
            print(f"harness: warning: {problem}", file=sys.stderr)


def _recorder(sweep: Sweep, offline: str | None) -> tuple[Recorder, str, str]:
    """Where the sweep is recorded, that place in words, and the closing hint (``{parent}``: the
    sweep's run id)."""
    from harness.journal import Journal
    from harness.tracking import Tracker

    if offline:
        hint = f"recorded in {offline} · log into MLflow with: harness import {offline}"
        return Journal(offline), f"offline folder {offline}", hint
    uri_flag = (
        f" --tracking-uri {sweep.tracking_uri}"
        if sweep.tracking_uri != config_mod.DEFAULT_TRACKING_URI
        else ""
    )
    where = f"{sweep.tracking_uri}, experiment {sweep.experiment!r}"
    return (
        Tracker(sweep.tracking_uri, sweep.experiment),
        where,
        f"sweep run {{parent}} · browse with: harness ui{uri_flag}",
    )


@contextmanager
def _executor(
    sweep: Sweep,
    registry: Registry,
    settings: WorkerSettings,
    args: argparse.Namespace,
    gpu_slots: GpuSlots | None,
    slurm: dict[str, Any],
) -> Iterator[Executor]:
    """The sweep's executor; Ray is joined (or started) and SLURM asked here, so a bad address or
    partition fails before any run."""
    from harness.executor import LocalExecutor

    if sweep.executor == "local":
        yield LocalExecutor(settings, max_workers=args.jobs or 1, gpu_slots=gpu_slots)
        return
    if sweep.executor == "slurm":
        yield _slurm_executor(settings, args, slurm)
        return
    from harness.ray_executor import RayExecutor

    executor = RayExecutor(
        settings,
        address=sweep.ray_address,
        max_workers=args.jobs,
        gpus_per_job=args.gpus_per_job,
        shared_process_methods=[m for m in sweep.methods if registry.method(m).shares_process],
    )
    try:
        executor.connect()
        yield executor
    finally:
        executor.shutdown()


def _slurm_executor(settings: WorkerSettings, args: argparse.Namespace, slurm: dict[str, Any]) -> Executor:
    from harness.slurm_executor import SlurmExecutor, SlurmOptions, parse_time

    gpus = args.gpus_per_job
    if gpus is not None and gpus != int(gpus):
        raise UsageError(
            f"--gpus-per-job {gpus:g}: SLURM gives whole GPUs to a job; use 1, 2, ... with --executor slurm"
        )
    if slurm["slurm_time"] is not None:
        parse_time(str(slurm["slurm_time"]))  # a typo costs one line, even without SLURM here
    options = SlurmOptions(
        folder=str(slurm["slurm_folder"]),
        partition=None if slurm["slurm_partition"] is None else str(slurm["slurm_partition"]),
        time=None if slurm["slurm_time"] is None else str(slurm["slurm_time"]),
        account=None if slurm["slurm_account"] is None else str(slurm["slurm_account"]),
        sbatch=tuple(slurm["slurm_sbatch"]),
        gpus_per_job=None if gpus is None else int(gpus),
        max_queued=args.jobs,
    )
    executor = SlurmExecutor(settings, options)
    executor.connect()
    return executor


# -------------------------------------------------------------------------------------------------
# list, data, ui
# -------------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> ExitCode:
    registry = _registry(args)  # the listing shows what is broken
    if args.json:
        print(json.dumps(_listing(registry), indent=2))
        return ExitCode.OK
    console = Console()
    methods = Table(title="methods")
    for col in ("name", "framework", "input"):
        methods.add_column(col, no_wrap=True)
    methods.add_column("description", ratio=1)
    for name, (spec, _) in sorted(registry.methods.items()):
        methods.add_row(name, spec.framework, spec.input, spec.description)
    console.print(methods)
    for name, (spec, _) in sorted(registry.methods.items()):
        params = Table(title=f"parameters of {name} (set with --param {name}.NAME=VALUE)")
        for col in ("name", "default", "accepts"):
            params.add_column(col, overflow="fold")
        params.add_column("help", overflow="fold", ratio=1)
        for p in spec.params:
            params.add_row(p.name, repr(p.default), describe(p), p.help)
        console.print(params)
    datasets = Table(title="datasets")
    for col in ("name", "classes", "samples", "native size", "channels", "variant"):
        datasets.add_column(col, no_wrap=col != "variant")
    datasets.add_column("description", ratio=1)
    for name, (dataset, _) in sorted(registry.datasets.items()):
        height, width, channels = dataset.image_shape
        datasets.add_row(
            name,
            str(dataset.n_classes),
            f"{dataset.n_samples:,}",
            f"{height}×{width}",
            {1: "1 (grey)", 3: "3 (RGB)"}.get(channels, str(channels)),
            dataset.variant,
            dataset.description + (" (declared in --config)" if name in registry.declared else ""),
        )
    console.print(datasets)
    metrics = Table(title="metrics (logged on every run; tables pick them with report --metrics)")
    for col in ("name", "kind", "better"):
        metrics.add_column(col, no_wrap=True)
    metrics.add_column("help", ratio=1)
    for name, (metric, _) in registry.metrics.items():
        metrics.add_row(
            name, _metric_kind(metric), "higher" if metric.higher_is_better else "lower", metric.help
        )
    console.print(metrics)
    # the plugin names are what --no-plugin takes; the distribution is what pip installed
    plugins = Table(title="plugins (--no-plugin NAME skips one)")
    for col in ("plugin", "installed by", "provides"):
        plugins.add_column(col, no_wrap=col == "plugin", ratio=1 if col == "provides" else None)
    provides: dict[str, list[str]] = {}
    for kind, table in (
        ("method", registry.methods),
        ("dataset", registry.datasets),
        ("metric", registry.metrics),
    ):
        for name, (_, provider) in sorted(table.items()):
            provides.setdefault(provider.plugin, []).append(f"{kind} {name}")
    for plugin, provider in sorted(registry.plugins.items()):
        plugins.add_row(
            plugin,
            str(provider) if provider.distribution else "--plugin",
            ", ".join(provides.get(plugin, [])),
        )
    for plugin, broken in sorted(registry.broken.items()):
        installed_by = str(broken.provider) if broken.provider.distribution else "--plugin"
        plugins.add_row(plugin, installed_by, Text(f"broken: {broken.problem}", style="red"))
    console.print(plugins)
    for clash in registry.clashes.values():
        console.print(Text(f"not listed: {clash}", style="red"))
    return ExitCode.OK


def _metric_kind(spec: MetricSpec) -> str:
    """``external`` (against the truth) or ``internal (embedding)``/``internal (input)``."""
    return spec.kind if spec.kind == "external" else f"internal ({spec.on})"


def _listing(registry: Registry) -> dict:
    return {
        "methods": [
            {
                "name": name,
                "distribution": provider.distribution,
                "version": provider.version,
                "plugin": provider.plugin,
                "framework": spec.framework,
                "input": spec.input,
                "description": spec.description,
                "params": [
                    {
                        "name": p.name,
                        "type": p.type.__name__,
                        "default": p.default,
                        "accepts": describe(p),
                        "help": p.help,
                    }
                    for p in spec.params
                ],
            }
            for name, (spec, provider) in sorted(registry.methods.items())
        ],
        "datasets": [
            {
                "name": name,
                "distribution": provider.distribution,
                "version": provider.version,
                "plugin": provider.plugin,
                "n_classes": spec.n_classes,
                "n_samples": spec.n_samples,
                "image_shape": list(spec.image_shape),
                "channels": spec.image_shape[2],
                "declared": name in registry.declared,
                "variant": spec.variant,
                "description": spec.description,
            }
            for name, (spec, provider) in sorted(registry.datasets.items())
        ],
        "metrics": [
            {
                "name": name,
                "distribution": provider.distribution,
                "version": provider.version,
                "plugin": provider.plugin,
                "kind": spec.kind,
                "on": spec.needs,
                "higher_is_better": spec.higher_is_better,
                "help": spec.help,
            }
            for name, (spec, provider) in registry.metrics.items()
        ],
        "broken": [
            {
                "plugin": name,
                "distribution": broken.provider.distribution,
                "version": broken.provider.version,
                "problem": broken.problem,
            }
            for name, broken in sorted(registry.broken.items())
        ],
        "clashes": sorted(registry.clashes.values()),
    }


def cmd_data(args: argparse.Namespace) -> ExitCode:
    from harness.data import DataError, default_data_dir

    registry = _registry(args)
    names = args.names or sorted(registry.datasets)
    registry.check("dataset", names)
    _warn_broken(registry)
    root = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    table = Table(title=f"datasets in {root}")
    table.add_column("name")
    table.add_column("status")
    bad = 0
    for name in names:
        try:
            registry.dataset(name).fetch(root, args.download)
            table.add_row(name, "[green]ok[/] (checksums verified)")
        except DataError as exc:
            bad += 1
            table.add_row(name, f"[red]{exc}[/]")
    Console().print(table)
    return ExitCode.USAGE_ERROR if bad else ExitCode.OK


def cmd_import(args: argparse.Namespace) -> ExitCode:
    import yaml

    from harness.journal import Journal, import_journal
    from harness.tracking import Tracker

    root = Path(args.dir).expanduser()
    if not (root / "runs").is_dir():
        raise UsageError(f"{args.dir!r} is not a folder written by `harness run --offline` (no runs/ in it)")
    recorded = yaml.safe_load((root / "sweep.yaml").read_text()) if (root / "sweep.yaml").is_file() else {}
    experiment = config_mod.resolve_experiment(args.experiment, recorded.get("experiment"))
    uri = config_mod.resolve_tracking_uri(args.tracking_uri)
    tracker = Tracker(uri, experiment)
    counts = import_journal(Journal(root), tracker, rerun=args.rerun)
    where = f"{uri}, experiment {experiment!r}"
    if counts["skipped"] == counts["total"]:
        Console(stderr=True).print(
            f"nothing new to import: all {counts['total']} job(s) already in {where} (--rerun imports them again)"
        )
        return ExitCode.OK
    Console(stderr=True).print(
        f"imported {counts['finished']} finished, {counts['failed']} failed and {counts['killed']} killed "
        f"job(s) into {where}; {counts['skipped']} already there, skipped"
    )
    return ExitCode.OK


def cmd_ui(args: argparse.Namespace) -> ExitCode:
    from harness.tracking import sqlite_path, ui_url

    uri = _tracking_uri(args)
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise UsageError(
            f"--tracking-uri: no tracking store at {db} "
            "(run `harness run` first, or pass the URI the runs went to)"
        )
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    _check_port_free(args.host, args.port)
    base = f"http://{args.host}:{args.port}"
    print(
        f"starting the MLflow UI on {base} (it answers after a few seconds; Ctrl-C to stop)",
        file=sys.stderr,
    )
    for name, experiment_id in _harness_experiments(uri):
        print(
            f"  experiment {name!r}, its runs by configuration: {ui_url(base, experiment_id)}",
            file=sys.stderr,
        )
    os.execv(sys.executable, command)
    return ExitCode.OK  # not reached


def _harness_experiments(uri: str) -> list[tuple[str, str]]:
    """(name, id) of the store's experiments that harness laid out for the UI (none where the
    store cannot be read: the UI itself will say why)."""
    from mlflow import MlflowClient

    from harness import record

    try:
        found = MlflowClient(tracking_uri=uri).search_experiments()
    except Exception:
        return []
    return [(e.name, e.experiment_id) for e in found if record.VIEW_TAG in e.tags]


def _check_port_free(host: str, port: int) -> None:
    """Fail here, in one line, rather than after announcing a UI that the server cannot start."""
    from harness.netcheck import cannot_listen

    reason = cannot_listen(host, port)
    if reason is not None:
        raise UsageError(
            f"--port {port}: cannot listen on {host}:{port} ({reason}); "
            "another server (another `harness ui`?) has it: choose another port with --port"
        )


def _tracked_runs(args: argparse.Namespace):
    """The child runs of ``--experiment`` in the store, filtered by ``--methods``/``--datasets``/
    ``--seeds``, one identity per cell (``--all-identities``: older ones as columns of their own).

    Returns the tracker, the runs and how many runs of older identities were left out (said on
    standard error here), so that the table, ``--compare`` and the figures use the same runs.
    """
    from harness.tracking import Tracker, sqlite_path
    from harness_reports import load_runs
    from harness_reports.identities import left_out_text, split_identities
    from harness_reports.runs import select, split_names
    from harness_reports.tables import seed_ranges

    uri = _tracking_uri(args)
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise UsageError(f"--tracking-uri: no tracking store at {db} (pass the URI the runs went to)")
    experiment = config_mod.resolve_experiment(args.experiment)
    tracker = Tracker(uri, experiment, create=False)
    runs = load_runs(tracker.client, tracker.experiment_id)
    for column, flag in (("method", args.methods), ("dataset", args.datasets)):
        if flag is not None:
            wanted = split_names(flag)
            if not wanted:
                raise UsageError(f"--{column}s: expected a comma-separated list, got {flag!r}")
            try:  # a plain method name stands for all of its configurations
                runs = select(runs, column, wanted)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    if runs.empty:
        raise UsageError(
            f"experiment {experiment!r} in {uri} has no job runs to report (runs of --dry-run "
            "smoke tests are left out)"
        )
    if args.seeds is not None:
        try:
            seeds = config_mod.parse_seeds(args.seeds)
        except UsageError as exc:
            raise UsageError(f"--{exc}") from None
        known = seed_ranges(sorted(set(runs["seed"]))).replace("--", "-")
        runs = runs[runs["seed"].isin(seeds)]
        if runs.empty:
            raise UsageError(f"--seeds {args.seeds}: no runs of these seeds; the runs have seeds {known}")
    runs, left_out = split_identities(runs, keep_older=args.all_identities)
    if len(left_out):
        print(f"harness: {left_out_text(left_out)}", file=sys.stderr)
    return tracker, runs, len(left_out)


def _tracking_uri(args: argparse.Namespace) -> str:
    return config_mod.resolve_tracking_uri(args.tracking_uri)


def cmd_report(args: argparse.Namespace) -> ExitCode:
    from harness_reports import posthoc, stats, tables
    from harness_reports.runs import configurations, split_names

    metrics = split_names(args.metrics)
    if not metrics:
        raise UsageError(
            f"--metrics: expected a comma-separated list such as acc,nmi_geometric, got {args.metrics!r}"
        )
    registry = _registry(args)
    try:
        check_names("metric", metrics, [*registry.metrics, "runtime_s"])
    except UsageError as exc:
        raise UsageError(f"--metrics: {exc}") from None
    tables.register_metrics(spec for spec, _ in registry.metrics.values())
    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        where = "is a folder" if out.is_dir() else f"its folder {out.parent} does not exist"
        raise UsageError(f"--out: cannot write {out}: {where}")
    tracker, runs, left_out = _tracked_runs(args)
    runs = _scored_after_the_fact(tracker.client, runs, registry, metrics, args.data_dir)
    pair = []
    if args.compare is not None:
        for name in split_names(args.compare):
            found = configurations(runs, name)
            if len(found) != 1:
                known = ", ".join(sorted(set(runs["method"])))
                why = f"{name!r} has {len(found)} configurations" if found else f"no runs of method {name!r}"
                raise UsageError(f"--compare: {why}; name one of: {known}")
            pair += found
        if len(pair) != 2:
            raise UsageError(f"--compare: expected two methods as A,B, got {args.compare!r}")
        if pair[0] == pair[1]:
            raise UsageError(f"--compare: compare {pair[0]!r} with another method, not with itself")
    if args.format == "latex":
        text = tables.to_latex(runs, metrics, left_out=left_out)
    elif args.format == "markdown":
        text = tables.to_markdown(runs, metrics, left_out=left_out)
    else:
        text = tables.to_csv(runs)
    if pair:
        comparison = stats.comparison_text(runs, pair[0], pair[1], metrics)
        Console(stderr=True, soft_wrap=True).print(comparison, highlight=False, markup=False)
    if args.stats:
        found, cells = _statistics(runs, metrics)
        statistics = posthoc.stats_text(found, cells)
        Console(stderr=True, soft_wrap=True).print(statistics, highlight=False, markup=False)
    try:
        if out is not None:
            out.write_text(text)
            print(f"wrote {out}", file=sys.stderr)
            if pair:  # beside the table, which may be LaTeX or CSV and must stay parseable
                out.with_suffix(".compare.txt").write_text(comparison)
                print(f"wrote {out.with_suffix('.compare.txt')}", file=sys.stderr)
            if args.stats:
                for path in _write_statistics(found, cells, statistics, out.with_suffix("")):
                    print(f"wrote {path}", file=sys.stderr)
        else:
            print(text)
            if args.stats:
                print(
                    "harness: pass --out FILE to also write the CD diagrams and CSVs beside FILE",
                    file=sys.stderr,
                )
    except OSError as exc:
        raise UsageError(f"--out: cannot write {exc.filename or out}: {exc.strerror}") from None
    return ExitCode.OK


def _statistics(runs, metrics: list[str]):
    """``report --stats``: every metric's analyses (dataset x size blocks, and seed blocks where
    the columns share seeds) and the cells' medians with bootstrap intervals."""
    from harness_reports import intervals, posthoc

    found = [analysis for metric in metrics for analysis in posthoc.analyses(runs, metric)]
    return found, intervals.cell_intervals(runs, metrics)


def _write_statistics(found, cells, text: str, stem: Path) -> list[Path]:
    """The ``--stats`` files beside ``--out``'s file ``stem``.suffix: the text, three tidy CSVs and
    the critical-difference diagrams; returns the paths written."""
    from harness_reports import posthoc
    from harness_reports.cd_diagram import write_cd_diagrams

    written = []
    for suffix, content in (
        (".stats.txt", text),
        (".stats-tests.csv", posthoc.tests_frame(found).to_csv(index=False)),
        (".stats-pairs.csv", posthoc.pairs_frame(found).to_csv(index=False)),
        (".stats-cells.csv", cells.to_csv(index=False)),
    ):
        path = stem.with_name(stem.name + suffix)
        path.write_text(content)
        written.append(path)
    return written + write_cd_diagrams(found, stem)


def _scored_after_the_fact(
    client: Any, runs: Any, registry: Registry, metrics: list[str], data_dir: str | None
):
    """``runs`` with the table's metrics filled in where a run was scored without them (or with an
    older version of a plugin's metric), from its stored arrays; what was done, on standard error."""
    import tempfile

    from harness_reports.rescore import fill_metrics, mlflow_reader

    with tempfile.TemporaryDirectory(prefix="harness-rescore-") as tmp:
        runs, notes = fill_metrics(
            runs,
            registry,
            metrics,
            mlflow_reader(client, Path(tmp)),
            data_dir=Path(data_dir).expanduser() if data_dir else None,
        )
    for note in notes:
        print(f"harness: {note}", file=sys.stderr)
    return runs


def cmd_plot(args: argparse.Namespace) -> ExitCode:
    from harness_reports.figures import make_figures

    tracker, runs, _ = _tracked_runs(args)
    written = make_figures(tracker.client, runs, Path(args.out), with_tsne=not args.no_tsne)
    for path in written:
        print(path)
    return ExitCode.OK


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "data": cmd_data,
    "report": cmd_report,
    "plot": cmd_plot,
    "import": cmd_import,
    "ui": cmd_ui,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return int(ExitCode.OK)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(COMMANDS[args.command](args))
    except (UsageError, PluginError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"harness: error: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE_ERROR)
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
