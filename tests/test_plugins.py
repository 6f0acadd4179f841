"""Discovery through the ``harness`` entry-point group, provenance, and contract errors."""

from __future__ import annotations

import importlib.metadata
import re
import types

import pytest

from harness import DatasetSpec, MethodResult, MethodSpec, hookimpl
from harness.errors import UsageError
from harness.plugins import PluginError, build_registry, make_plugin_manager


class FakeEntryPoint:
    def __init__(self, name, obj, group="harness"):
        self.name, self.group, self._obj, self.value = name, group, obj, f"fake:{name}"

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


class FakeDist:
    def __init__(self, name, version, entry_points):
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = entry_points
        self._normalized_name = name


def _method_plugin(name):
    mod = types.ModuleType(f"plugin_{name}")

    @hookimpl
    def harness_methods():
        return [MethodSpec(name, lambda *a, **k: MethodResult(labels=None))]

    mod.harness_methods = harness_methods
    return mod


@pytest.fixture
def fake_dists(monkeypatch):
    dists = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))
    return dists


def test_built_ins_register_through_entry_points_like_third_parties(registry):
    assert registry.methods["kmeans"][1].distribution == "harness-kmeans"
    assert registry.datasets["mnist"][1].distribution == "harness-datasets"
    assert {"digits", "mnist", "fmnist", "usps", "coil20"} <= set(registry.datasets)


def test_third_party_plugin_is_discovered_with_its_distribution(fake_dists):
    fake_dists.append(FakeDist("harness-toy", "1.2.3", [FakeEntryPoint("toy", _method_plugin("toy"))]))
    registry = build_registry(make_plugin_manager())
    spec, provider = registry.methods["toy"]
    assert spec.name == "toy"
    assert (provider.plugin, provider.distribution, provider.version) == ("toy", "harness-toy", "1.2.3")
    assert str(provider) == "harness-toy-1.2.3"


def test_blocked_plugin_is_not_loaded(fake_dists):
    fake_dists.append(FakeDist("harness-toy", "1.0", [FakeEntryPoint("toy", _method_plugin("toy"))]))
    registry = build_registry(make_plugin_manager(blocked=["toy"]))
    assert "toy" not in registry.methods


def test_blocking_a_plugin_that_does_not_exist_is_an_error(fake_dists):
    fake_dists.append(FakeDist("harness-toy", "1.0", [FakeEntryPoint("toy", _method_plugin("toy"))]))
    with pytest.raises(
        UsageError,
        match="--no-plugin 'tooy': no plugin of that name \\(did you mean 'toy'\\?\\); plugins: toy",
    ):
        make_plugin_manager(blocked=["tooy"])


def test_a_plugin_module_loaded_twice_registers_once():
    # installed (entry point "kmeans") and named again with --plugin: the same module, once
    registry = build_registry(make_plugin_manager(extra_modules=["harness_kmeans"]))
    assert registry.methods["kmeans"][1].plugin == "kmeans"


def test_same_method_from_two_plugins_names_both_and_costs_only_that_name(fake_dists):
    fake_dists.append(FakeDist("harness-a", "1.0", [FakeEntryPoint("a", _method_plugin("dup"))]))
    fake_dists.append(FakeDist("harness-b", "2.0", [FakeEntryPoint("b", _method_plugin("dup"))]))
    fake_dists.append(FakeDist("harness-toy", "1.0", [FakeEntryPoint("toy", _method_plugin("toy"))]))
    registry = build_registry(make_plugin_manager())
    assert set(registry.methods) == {"toy"} and set(registry.plugins) == {"a", "b", "toy"}
    message = (
        "method 'dup' is provided twice: by plugin 'a' (harness-a-1.0) and by plugin 'b' (harness-b-2.0); "
        "skip one with --no-plugin a or --no-plugin b"
    )
    assert registry.problems() == [message]
    with pytest.raises(PluginError, match=re.escape(message)):
        registry.method("dup")
    assert "dup" in build_registry(make_plugin_manager(blocked=["b"])).methods


def _broken_plugins():
    """Entry points broken in each way, by name: what ``str`` of each should say after the name."""
    typo = types.ModuleType("typo")
    typo.harness_method = hookimpl(lambda: [])  # missing "s"

    def boom():
        raise RuntimeError("the registry service is down")

    raising = types.ModuleType("raising")
    raising.harness_methods = hookimpl(boom)
    args = types.ModuleType("args")
    args.harness_methods = hookimpl(lambda registry: [])  # an argument the hook does not pass
    wrong = types.ModuleType("wrong")
    wrong.harness_datasets = hookimpl(lambda: ["not a spec"])
    return {
        "noimport": (
            ImportError("no module named torch"),
            "failed to load: ImportError: no module named torch",
        ),
        "typo": (typo, "implements unknown hook 'harness_method' (did you mean 'harness_methods'?)"),
        "raising": (raising, "raised in harness_methods(): RuntimeError: the registry service is down"),
        "args": (
            args,
            "does not fit the hooks: <lambda>(registry) Argument(s) {'registry'} are declared in the "
            "hookimpl but can not be found in the hookspec",
        ),
        "wrong": (wrong, "returned 'not a spec' from harness_datasets(), expected DatasetSpec objects"),
    }


@pytest.mark.parametrize("name", ["noimport", "typo", "raising", "args", "wrong"])
def test_a_broken_plugin_is_left_out_with_one_line_and_the_rest_works(fake_dists, name):
    obj, problem = _broken_plugins()[name]
    fake_dists.append(FakeDist(f"harness-{name}", "0.1", [FakeEntryPoint(name, obj)]))
    fake_dists.append(FakeDist("harness-toy", "1.0", [FakeEntryPoint("toy", _method_plugin("toy"))]))
    registry = build_registry(make_plugin_manager())
    line = f"plugin {name!r} (harness-{name}-0.1) {problem}; skip it with --no-plugin {name}"
    assert registry.problems() == [line]
    assert registry.method("toy").name == "toy" and set(registry.plugins) == {"toy"}
    # what it may have provided: the error names it and its cause
    with pytest.raises(PluginError, match=f"^method {name!r} is not available: {re.escape(line)}$"):
        registry.method(name)
    with pytest.raises(
        UsageError, match=f"^unknown method 'other'; installed methods: toy; not loaded: {re.escape(line)}$"
    ):
        registry.method("other")
    blocked = build_registry(make_plugin_manager(blocked=[name]))
    assert not blocked.problems() and set(blocked.methods) == {"toy"}


def test_extra_module_by_import_path(fake_dists):
    registry = build_registry(make_plugin_manager(extra_modules=["harness_test_plugins"]))
    assert {"flaky", "crash", "curves"} <= set(registry.methods)
    with pytest.raises(UsageError, match="--plugin 'no_such_module_xyz': cannot import it"):
        make_plugin_manager(extra_modules=["no_such_module_xyz"])


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(UsageError, match="unknown dataset 'fminst' \\(did you mean 'fmnist'\\?\\)"):
        registry.dataset("fminst")


def test_every_hook_is_documented_where_declared():
    from harness import hookspecs

    for name in ("harness_methods", "harness_datasets"):
        doc = getattr(hookspecs, name).__doc__
        assert doc and ":returns:" in doc, name
    assert DatasetSpec.__doc__ and MethodSpec.__doc__


def test_a_dataset_whose_load_contradicts_its_spec_is_refused(tmp_path):
    """The run key and the tables record the spec's variant; a plugin's ``load`` must agree."""
    import numpy as np
    from sklearn.datasets import load_digits

    from harness import Dataset, DatasetSpec, worker_cache

    def load(root):
        x, y = load_digits(return_X_y=True)
        return Dataset("mine", (x / 16).reshape(-1, 8, 8, 1).astype(np.float32), y, 10, "all", "/16")

    def plugin(variant):
        mod = types.ModuleType(f"data_{variant}")
        mod.harness_datasets = hookimpl(
            lambda: [
                DatasetSpec("mine", 10, (8, 8, 1), 1797, lambda root, download: [], load, variant=variant)
            ]
        )
        return mod

    worker_cache.clear()
    registry = build_registry(make_plugin_manager(load_entry_points=False, extra=[plugin("train+test")]))
    with pytest.raises(
        ValueError, match="load\\(\\) returned variant 'all' .* DatasetSpec says variant 'train\\+test'"
    ):
        worker_cache.dataset(registry, "mine", tmp_path)
    worker_cache.clear()
    registry = build_registry(make_plugin_manager(load_entry_points=False, extra=[plugin("all")]))
    assert worker_cache.dataset(registry, "mine", tmp_path).variant == "all"
    worker_cache.clear()
