"""Plugin discovery: one entry-point group, ``harness``, for built-in and third-party plugins alike.

A broken plugin costs only itself: one that fails to import, whose hook raises or returns the
wrong thing, or that implements a hook harness does not have, is left out and recorded in
:attr:`Registry.broken`; a name two plugins offer is left out and recorded in
:attr:`Registry.clashes`. Everything else works, and asking for what a broken plugin may have
provided is an error that names it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pluggy

from harness import hookspecs
from harness.contract import ContractError, check_param_defaults
from harness.errors import UsageError, did_you_mean
from harness.types import DatasetFormat, DatasetSpec, MethodSpec, MetricSpec

ENTRY_POINT_GROUP = hookspecs.PROJECT
HOOKS = tuple(name for name in vars(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_"))
"""The hooks a plugin may implement."""


class PluginError(Exception):
    """A plugin broke what was asked for; ``plugin`` names the culprit."""

    def __init__(self, message: str, plugin: str) -> None:
        super().__init__(message)
        self.plugin = plugin


@dataclass(frozen=True)
class Provider:
    """Where a method or dataset comes from: the plugin and the distribution that installed it."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution}-{self.version}" if self.distribution else self.plugin


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out, and why; :func:`str` is the one line a user sees."""

    provider: Provider
    problem: str
    """What went wrong, such as ``failed to load: ImportError: No module named 'torch'``."""

    def __str__(self) -> str:
        return f"{_described(self.provider)} {self.problem}; skip it with --no-plugin {self.provider.plugin}"


def _described(provider: Provider) -> str:
    """``plugin 'dec' (harness-dec-0.1.0)``, or ``plugin 'my_module'`` for one loaded by ``--plugin``."""
    return f"plugin {provider.plugin!r}" + (f" ({provider})" if provider.distribution else "")


@dataclass(frozen=True)
class Registry:
    """Every method, dataset and metric the loaded plugins offer, each with its provider."""

    methods: dict[str, tuple[MethodSpec, Provider]]
    datasets: dict[str, tuple[DatasetSpec, Provider]]
    plugins: dict[str, Provider]
    """The plugins in use (broken ones are in ``broken``)."""
    broken: dict[str, BrokenPlugin] = field(default_factory=dict)
    clashes: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) offered by two plugins → the message naming both."""
    metrics: dict[str, tuple[MetricSpec, Provider]] = field(default_factory=dict)
    """The final scores of every run, in the order the plugins registered them."""
    formats: dict[str, tuple[DatasetFormat, Provider]] = field(default_factory=dict)
    """File formats users may declare datasets in (``own_datasets:`` of a config file)."""
    declared: tuple[str, ...] = ()
    """The datasets among ``datasets`` that a config file declared (:meth:`declare`)."""

    def declare(self, declarations: Mapping[str, Mapping[str, Any]], base_dir: Path) -> Registry:
        """This registry plus the datasets ``declarations`` describe (name → mapping with a
        ``format`` key), each built by the plugin that provides its format."""
        datasets = dict(self.datasets)
        for name, declaration in declarations.items():
            where = f"own_datasets: {name!r}"
            if name in self.datasets:
                provider = self.datasets[name][1]
                raise UsageError(
                    f"{where}: a dataset of that name is installed ({_described(provider)}); rename it"
                )
            if not isinstance(declaration, Mapping):
                raise UsageError(f"{where}: expected a mapping with a format key, got {declaration!r}")
            fmt = declaration.get("format")
            known = sorted(self.formats)
            if fmt not in self.formats:
                hint = did_you_mean(str(fmt), known) if isinstance(fmt, str) else ""
                raise UsageError(
                    f"{where}: format {fmt!r} is not known{hint}; formats: {', '.join(known) or 'none installed'}"
                )
            spec_format, provider = self.formats[fmt]
            unknown = sorted(set(declaration) - {"format", *spec_format.keys})
            if unknown:
                valid = ", ".join(spec_format.keys)
                raise UsageError(
                    f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], spec_format.keys)} "
                    f"for format {fmt!r}; valid keys: format, {valid}"
                )
            spec = spec_format.build(name, declaration, base_dir)
            if not isinstance(spec, DatasetSpec) or spec.name != name:
                raise PluginError(
                    f"format {fmt!r} of {_described(provider)} built {spec!r} for {name!r}", provider.plugin
                )
            datasets[name] = (spec, provider)
        return replace(self, datasets=datasets, declared=(*self.declared, *declarations))

    def method(self, name: str) -> MethodSpec:
        return self.methods[self._check("method", name, self.methods)][0]

    def dataset(self, name: str) -> DatasetSpec:
        return self.datasets[self._check("dataset", name, self.datasets)][0]

    def metric(self, name: str) -> MetricSpec:
        return self.metrics[self._check("metric", name, self.metrics)][0]

    def check(self, kind: Literal["method", "dataset", "metric"], names: Iterable[str]) -> None:
        """Raise for the first of ``names`` (methods, datasets or metrics) that cannot be used, saying why."""
        tables: dict[str, dict[str, Any]] = {"method": self.methods, "dataset": self.datasets}
        table = tables.get(kind, self.metrics)
        for name in names:
            self._check(kind, name, table)

    def problems(self) -> list[str]:
        """One line per broken plugin and per clashing name: the warnings a command prints."""
        return [*map(str, self.broken.values()), *self.clashes.values()]

    def _check(self, kind: str, name: str, table: dict[str, Any]) -> str:
        if name in table:
            return name
        if (kind, name) in self.clashes:
            raise PluginError(self.clashes[kind, name], plugin=name)
        broken = self.broken.get(name)
        if broken is not None:  # the entry point is named after what it provides, as the built-ins are
            raise PluginError(f"{kind} {name!r} is not available: {broken}", plugin=name)
        try:
            _check_name(kind, name, table)
        except UsageError as exc:
            if not self.broken:
                raise
            raise UsageError(f"{exc}; not loaded: {'; '.join(map(str, self.broken.values()))}") from None
        return name


def _check_name(kind: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    if name in known:
        return name
    valid = ", ".join(known) if known else f"none: no plugin provides a {kind}"
    raise UsageError(f"unknown {kind} {name!r}{did_you_mean(name, known)}; installed {kind}s: {valid}")


def check_names(kind: str, names: Sequence[str], known: Iterable[str]) -> None:
    """Raise :class:`UsageError` for the first name that is not known, with a did-you-mean."""
    known = list(known)
    for name in names:
        _check_name(kind, name, known)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with the harness hooks, which also knows each plugin's distribution and the
    plugins it had to leave out."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        """Plugin name → (distribution, version), for plugins installed through an entry point."""
        self.broken: dict[str, BrokenPlugin] = {}

    def provider(self, name: str) -> Provider:
        distribution, version = self.distributions.get(name, ("", ""))
        return Provider(plugin=name, distribution=distribution, version=version)

    def leave_out(self, name: str, problem: str) -> None:
        """Record plugin ``name`` as broken and unregister what it registered."""
        if self.has_plugin(name):
            self.unregister(name=name)
        self.broken[name] = BrokenPlugin(self.provider(name), problem)

    def register_checked(self, plugin: Any, name: str | None = None) -> None:
        """Register ``plugin``, or leave it out if its hooks do not fit the specs."""
        name = name or self.get_canonical_name(plugin)
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # a hook with arguments its spec does not have
            text = " ".join(str(exc).split()).split("hookimpl definition: ", 1)[-1]  # pluggy's, on one line
            self.leave_out(name, f"does not fit the hooks: {text}")
            return
        unknown = [
            caller.name
            for caller in self.get_hookcallers(plugin) or ()
            if not caller.has_spec()
            and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())
        ]
        if unknown:
            hook = unknown[0]
            self.leave_out(name, f"implements unknown hook {hook!r}{did_you_mean(hook, HOOKS)}")


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    blocked: Sequence[str] = (),
    extra: Sequence[Any] = (),
    extra_modules: Sequence[str] = (),
) -> PluginManager:
    """Build a plugin manager with the hook specs, the installed plugins and extra ones.

    ``blocked`` names entry points not to load (``--no-plugin NAME``); ``extra_modules`` are import
    paths of plugin modules to register as well (``--plugin MODULE``, like pytest's ``-p``);
    ``extra`` are plugin objects registered directly (tests, programs that embed harness).
    """
    pm = PluginManager()
    for name in blocked:
        pm.set_blocked(name)
    if load_entry_points:
        _load_entry_points(pm)
    for module_name in extra_modules:
        if pm.has_plugin(module_name) or pm.is_blocked(module_name) or module_name in pm.broken:
            continue
        try:
            module = _import_plugin(module_name)
        except UsageError:
            raise
        except Exception as exc:  # the module exists but raised while importing
            pm.leave_out(module_name, f"failed to load: {_one_line(exc)}")
            continue
        if not pm.is_registered(module):  # already loaded through its entry point: once is enough
            pm.register_checked(module, module_name)
    for plugin in extra:
        pm.register_checked(plugin)
    pm.check_pending()  # nothing unknown is left: register_checked took out who had it
    if load_entry_points:
        _check_blocked(blocked, extra_modules)
    return pm


def _load_entry_points(pm: PluginManager) -> None:
    """pluggy's ``load_setuptools_entrypoints``, one entry point at a time, so that the one that
    fails is known for certain and left out alone."""
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            if ep.name in pm.broken:
                continue
            pm.distributions[ep.name] = (dist.metadata["name"], dist.version)
            try:
                plugin = ep.load()
            except Exception as exc:
                pm.leave_out(ep.name, f"failed to load: {_one_line(exc)}")
                continue
            pm.register_checked(plugin, ep.name)


def entry_point_names() -> list[str]:
    """The names ``--no-plugin`` takes: the entry points of the ``harness`` group."""
    return sorted(
        {
            ep.name
            for dist in importlib.metadata.distributions()
            for ep in dist.entry_points
            if ep.group == ENTRY_POINT_GROUP
        }
    )


def _check_blocked(blocked: Sequence[str], extra_modules: Sequence[str]) -> None:
    """A ``--no-plugin`` name that matches nothing is a typo, not a request: say so."""
    known = [*entry_point_names(), *extra_modules]
    for name in blocked:
        if name not in known:
            raise UsageError(
                f"--no-plugin {name!r}: no plugin of that name{did_you_mean(name, known)}; "
                f"plugins: {', '.join(known)}"
            )


def _import_plugin(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):  # the module itself: a typo
            raise UsageError(f"--plugin {module_name!r}: cannot import it ({exc})") from exc
        raise


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def build_registry(pm: PluginManager) -> Registry:
    """Collect the methods, datasets and metrics of every plugin; a plugin whose hook raises or returns the
    wrong thing is left out, and a name offered twice is left out, naming both plugins."""
    broken = dict(pm.broken)
    offered: dict[str, list[tuple[str, Any]]] = {}  # plugin → (kind, spec), in hook order
    for hook, kind, spec_type in (
        (pm.hook.harness_methods, "method", MethodSpec),
        (pm.hook.harness_datasets, "dataset", DatasetSpec),
        (pm.hook.harness_metrics, "metric", MetricSpec),
        (pm.hook.harness_dataset_formats, "format", DatasetFormat),
    ):
        # Call each implementation on its own so that every spec keeps the plugin that sent it.
        for impl in hook.get_hookimpls():
            name = impl.plugin_name
            if name in broken:
                continue
            try:
                returned: Any = impl.function()
                specs = list(returned or ())
            except Exception as exc:
                broken[name] = BrokenPlugin(pm.provider(name), f"raised in {hook.name}(): {_one_line(exc)}")
                continue
            wrong = next((spec for spec in specs if not isinstance(spec, spec_type)), None)
            if wrong is not None:
                problem = f"returned {wrong!r} from {hook.name}(), expected {spec_type.__name__} objects"
                broken[name] = BrokenPlugin(pm.provider(name), problem)
                continue
            refused = _refused_default(specs)
            if refused:
                broken[name] = BrokenPlugin(pm.provider(name), refused)
                continue
            offered.setdefault(name, []).extend((kind, spec) for spec in specs)

    tables: dict[str, dict[str, Any]] = {"method": {}, "dataset": {}, "metric": {}, "format": {}}
    clashes: dict[tuple[str, str], str] = {}
    for name, specs in offered.items():
        if name in broken:  # its other hook failed
            continue
        provider = pm.provider(name)
        for kind, spec in specs:
            table = tables[kind]
            if (kind, spec.name) in clashes:
                continue
            if spec.name in table:
                other = table.pop(spec.name)[1]
                clashes[kind, spec.name] = (
                    f"{kind} {spec.name!r} is provided twice: by {_described(other)} and by "
                    f"{_described(provider)}; skip one with --no-plugin {other.plugin} "
                    f"or --no-plugin {provider.plugin}"
                )
                continue
            table[spec.name] = (spec, provider)
    plugins = {
        name: pm.provider(name)
        for name, plugin in pm.list_name_plugin()
        if plugin is not None and name not in broken  # None: blocked
    }
    return Registry(
        methods=tables["method"],
        datasets=tables["dataset"],
        metrics=tables["metric"],
        plugins=plugins,
        broken=broken,
        clashes=clashes,
        formats=tables["format"],
    )


def load_registry(
    *, blocked: Sequence[str] = (), extra: Sequence[Any] = (), extra_modules: Sequence[str] = ()
) -> Registry:
    """Plugin manager and registry in one call: what the CLI and the workers use."""
    return build_registry(make_plugin_manager(blocked=blocked, extra=extra, extra_modules=extra_modules))


def _refused_default(specs: list[Any]) -> str:
    """Why a method's declared default breaks its own parameter's rules ("" when none does)."""
    for spec in specs:
        if isinstance(spec, MethodSpec):
            try:
                check_param_defaults(spec)
            except ContractError as exc:
                return str(exc)
    return ""
