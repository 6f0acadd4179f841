"""Parameter lists: one configuration per value, crossed with the other axes of a sweep."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.config import build_sweep, parse_param_flags, read_config
from harness.errors import UsageError
from harness.params import resolve
from harness.sweep import Job, expand
from harness_reports import load_runs


def _sweep(registry, flags=(), **config):
    base = {"methods": ["kmeans"], "datasets": ["digits"], "seeds": "0-1"} | config
    return build_sweep(registry, base, {"params": parse_param_flags(list(flags)) or None})


def test_a_cli_list_crosses_seeds_and_sizes(registry):
    sweep = _sweep(registry, ["kmeans.n_init=2,3"], sizes="native,16")
    jobs = expand(sweep, registry)
    assert len(jobs) == 2 * 2 * 2  # n_init values x sizes x seeds
    cells = {(j.params["n_init"], j.input_size, j.seed) for j in jobs}
    assert cells == {(n, s, seed) for n in (2, 3) for s in (8, 16) for seed in (0, 1)}
    assert len({j.run_key for j in jobs}) == len(jobs)
    assert {j.configuration for j in jobs} == {"kmeans (n_init=2)", "kmeans (n_init=3)"}
    assert jobs[0].label == "kmeans (n_init=2) · digits@8 · seed 0"


def test_each_value_has_the_run_key_of_its_single_value_sweep(registry):
    listed = {
        (j.params["n_init"], j.seed): j.run_key
        for j in expand(_sweep(registry, ["kmeans.n_init=2,3"]), registry)
    }
    for n in (2, 3):
        alone = expand(_sweep(registry, [f"kmeans.n_init={n}"]), registry)
        assert {(n, j.seed): j.run_key for j in alone} == {k: v for k, v in listed.items() if k[0] == n}


def test_a_single_value_sweep_keeps_the_run_keys_of_before_lists(registry):
    # before lists, a job's params were the method's resolved parameters, one value each
    (job,) = expand(_sweep(registry, ["kmeans.n_init=2"], seeds="0"), registry)
    assert job.swept == () and job.label == "kmeans · digits@8 · seed 0"
    before = Job(
        method="kmeans", dataset="digits", dataset_variant=job.dataset_variant, input_size=8, native_size=8,
        seed=0, params=resolve(registry.method("kmeans"), {"n_init": "2"}), resize_filter="none",
        unkeyed=job.unkeyed, method_identity=job.method_identity, dataset_identity=job.dataset_identity,
        core_identity=job.core_identity,
    )  # fmt: skip
    assert job.run_key == before.run_key


def test_a_yaml_list_equals_the_cli_list_and_repeats_are_dropped(registry, tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "methods: [kmeans]\ndatasets: [digits]\nseeds: 0-1\nparams: {kmeans: {n_init: [2, 3, 2.0]}}\n"
    )
    from_yaml = expand(build_sweep(registry, read_config(cfg)), registry)
    from_cli = expand(_sweep(registry, ["kmeans.n_init=2,3,02"]), registry)
    assert [j.run_key for j in from_yaml] == [j.run_key for j in from_cli]
    assert len(from_yaml) == 4
    # a YAML string is one value, never split
    cfg.write_text("methods: [kmeans]\ndatasets: [digits]\nparams: {kmeans: {n_init: '2,3'}}\n")
    with pytest.raises(UsageError, match="parameter 'n_init' must be an integer >= 1, got '2,3'"):
        build_sweep(registry, read_config(cfg))


def test_two_lists_give_their_product(registry):
    sweep = _sweep(registry, ["kmeans.n_init=2,3", "kmeans.algorithm=lloyd,elkan"], seeds="0")
    jobs = expand(sweep, registry)
    assert sorted((j.params["n_init"], j.params["algorithm"]) for j in jobs) == [
        (2, "elkan"), (2, "lloyd"), (3, "elkan"), (3, "lloyd")
    ]  # fmt: skip
    assert sweep.n_configurations == 4
    assert {j.configuration for j in jobs} >= {"kmeans (n_init=2, algorithm=elkan)"}


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("kmeans.n_init=2,0", "parameter 'n_init' must be an integer >= 1, got '0'"),
        (
            "kmeans.algorithm=lloyd,elkn",
            "must be one of 'lloyd', 'elkan', got 'elkn' \\(did you mean 'elkan'\\?\\)",
        ),
        ("kmeans.n_inits=2,3", "method 'kmeans' has no parameter 'n_inits' \\(did you mean 'n_init'\\?\\)"),
        ('kmeans.algorithm="lloyd', "cannot split"),
    ],
)
def test_a_bad_value_in_a_list_is_named(registry, flag, message):
    with pytest.raises(UsageError, match=message):
        _sweep(registry, [flag])


def test_a_parameter_outside_the_run_key_takes_one_value(registry):
    from harness.types import MethodSpec, Param

    spec = MethodSpec("m", lambda: None, params=(Param("threads", int, 1, "", in_run_key=False),))
    from harness.params import resolve_grid

    assert resolve_grid(spec, {"threads": ["2", "2"]}) == {"threads": (2,)}
    with pytest.raises(UsageError, match="parameter 'threads' cannot change a result"):
        resolve_grid(spec, {"threads": ["1", "2"]})


def test_quoted_values_keep_their_commas():
    assert parse_param_flags(['m.note="a,b",c']) == {"m": {"note": ["a,b", "c"]}}
    assert parse_param_flags(['m.note="a,b"']) == {"m": {"note": "a,b"}}
    assert parse_param_flags(["m.n=2,3", "m.k=4"]) == {"m": {"n": ["2", "3"], "k": "4"}}


def test_two_values_of_n_init_are_two_configurations_in_the_report(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", "--methods", "kmeans", "--datasets", "digits", "--seeds", "0-1", "--tracking-uri", uri]
    assert main([*argv, "--param", "kmeans.n_init=2,3"]) == 0
    captured = capsys.readouterr()
    assert "2 configuration(s) of 1 method(s)" in captured.err and "= 4 jobs" in captured.err
    assert "✓ kmeans (n_init=3) · digits@8 · seed 1" in captured.err
    assert "kmeans (n_init=2)" in captured.out and "kmeans (n_init=3)" in captured.out  # summary table
    client = MlflowClient(tracking_uri=uri)
    runs = load_runs(client, client.get_experiment_by_name("harness").experiment_id)
    assert sorted(runs["method"].unique()) == ["kmeans (n_init=2)", "kmeans (n_init=3)"]
    assert main(["report", "--tracking-uri", uri, "--format", "csv"]) == 0
    report = capsys.readouterr().out
    assert report.count("kmeans (n_init=2)") == 2 and report.count("kmeans (n_init=3)") == 2
    # a rerun of one of the values finds its runs done
    assert main([*argv, "--param", "kmeans.n_init=3"]) == 0
    assert "2 of 2 jobs already finished" in capsys.readouterr().err
