"""Plugin discovery: one entry-point group, ``harness``, for built-in and third-party plugins alike."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import UsageError, did_you_mean
from harness.types import DatasetSpec, MethodSpec

ENTRY_POINT_GROUP = hookspecs.PROJECT


class PluginError(Exception):
    """A plugin failed to load or broke the contract; ``plugin`` names the culprit."""

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
class Registry:
    """Every method and dataset the loaded plugins offer, each with its provider."""

    methods: dict[str, tuple[MethodSpec, Provider]]
    datasets: dict[str, tuple[DatasetSpec, Provider]]
    plugins: dict[str, Provider]

    def method(self, name: str) -> MethodSpec:
        return self.methods[_check_name("method", name, self.methods)][0]

    def dataset(self, name: str) -> DatasetSpec:
        return self.datasets[_check_name("dataset", name, self.datasets)][0]


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


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    blocked: Sequence[str] = (),
    extra: Sequence[Any] = (),
    extra_modules: Sequence[str] = (),
) -> pluggy.PluginManager:
    """Build a plugin manager with the hook specs, the installed plugins and extra ones.

    ``blocked`` names entry points not to load (``--no-plugin NAME``); ``extra_modules`` are import
    paths of plugin modules to register as well (``--plugin MODULE``, like pytest's ``-p``);
    ``extra`` are plugin objects registered directly (tests, programs that embed harness).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken plugin must not look like a harness bug
            name = _failing_entry_point(pm, exc)
            raise PluginError(f"plugin {name!r} failed to load: {exc}", plugin=name) from exc
    for module_name in extra_modules:
        if pm.get_plugin(module_name) is None and not pm.is_blocked(module_name):
            module = _import_plugin(module_name)
            if not pm.is_registered(module):  # already loaded through its entry point: once is enough
                pm.register(module, name=module_name)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    if load_entry_points:
        _check_blocked(blocked, extra_modules)
    return pm


def entry_point_names() -> list[str]:
    """The names ``--no-plugin`` takes: the entry points of the ``harness`` group."""
    from importlib.metadata import distributions  # as pluggy finds them

    return sorted(
        {ep.name for dist in distributions() for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
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
    except ImportError as exc:
        raise UsageError(f"--plugin {module_name!r}: cannot import it ({exc})") from exc
    except Exception as exc:
        raise PluginError(f"plugin {module_name!r} failed to load: {exc}", plugin=module_name) from exc


def _failing_entry_point(pm: pluggy.PluginManager, exc: BaseException) -> str:
    """Name the entry point whose import raised (pluggy loads them in one call)."""
    from importlib.metadata import distributions

    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            return f"{ep.name} ({dist.metadata['name']})"
    return "?"


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Collect the methods and datasets of every plugin; a name offered twice is an error."""
    providers = _providers(pm)
    methods: dict[str, tuple[MethodSpec, Provider]] = {}
    datasets: dict[str, tuple[DatasetSpec, Provider]] = {}
    for hook, table, kind, spec_type in (
        (pm.hook.harness_methods, methods, "method", MethodSpec),
        (pm.hook.harness_datasets, datasets, "dataset", DatasetSpec),
    ):
        # Call each implementation on its own so that every spec keeps the plugin that sent it.
        for impl in hook.get_hookimpls():
            provider = providers[impl.plugin_name]
            for spec in impl.function() or ():
                if not isinstance(spec, spec_type):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {hook.name}() returned {spec!r}, "
                        f"expected {spec_type.__name__} objects",
                        plugin=impl.plugin_name,
                    )
                if spec.name in table:
                    other = table[spec.name][1]
                    raise PluginError(
                        f"{kind} {spec.name!r} is provided twice: by plugin {other.plugin!r} "
                        f"({other}) and by plugin {provider.plugin!r} ({provider}); "
                        f"block one with --no-plugin",
                        plugin=impl.plugin_name,
                    )
                table[spec.name] = (spec, provider)
    return Registry(methods=methods, datasets=datasets, plugins=providers)


def _providers(pm: pluggy.PluginManager) -> dict[str, Provider]:
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        out[name] = Provider(
            plugin=name,
            distribution=dist.project_name if dist else "",
            version=dist.version if dist else "",
        )
    return out


def load_registry(
    *, blocked: Sequence[str] = (), extra: Sequence[Any] = (), extra_modules: Sequence[str] = ()
) -> Registry:
    """Plugin manager and registry in one call: what the CLI and the workers use."""
    return build_registry(make_plugin_manager(blocked=blocked, extra=extra, extra_modules=extra_modules))
