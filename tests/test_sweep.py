"""Expansion of a sweep into jobs, and the run keys that make resuming possible."""

from __future__ import annotations

from dataclasses import replace

from harness.config import build_sweep
from harness.sweep import expand


def test_grid_is_complete_and_seeds_are_paired(registry):
    sweep = build_sweep(registry, {"datasets": ["digits", "usps"], "sizes": "native,28", "seeds": "0-2"})
    jobs = expand(sweep, registry)
    methods = len(sweep.methods)
    assert len(jobs) == 2 * 2 * 3 * methods
    # every (dataset, size) has the same seeds for every method
    by_cell = {}
    for job in jobs:
        by_cell.setdefault((job.dataset, job.input_size, job.method), []).append(job.seed)
    assert all(seeds == [0, 1, 2] for seeds in by_cell.values())
    assert {(j.dataset, j.input_size) for j in jobs} == {
        ("digits", 8),
        ("digits", 28),
        ("usps", 16),
        ("usps", 28),
    }


def test_native_size_is_not_resized_and_equals_asking_for_it(registry):
    native = expand(build_sweep(registry, {"datasets": ["usps"], "sizes": "native"}), registry)
    explicit = expand(build_sweep(registry, {"datasets": ["usps"], "sizes": "16"}), registry)
    assert [j.run_key for j in native] == [j.run_key for j in explicit]
    assert {j.resize_filter for j in native} == {"none"}
    resized = expand(build_sweep(registry, {"datasets": ["usps"], "sizes": "28"}), registry)
    assert {j.resize_filter for j in resized} == {"bilinear"}


def test_run_keys_are_stable_and_unique(registry):
    sweep = build_sweep(registry, {"datasets": ["digits"], "seeds": "0-4"})
    first = [j.run_key for j in expand(sweep, registry)]
    again = [
        j.run_key for j in expand(build_sweep(registry, {"datasets": ["digits"], "seeds": "0-4"}), registry)
    ]
    assert first == again
    assert len(set(first)) == len(first)


def test_run_key_changes_with_anything_that_changes_the_result(registry):
    job = expand(
        build_sweep(registry, {"datasets": ["digits"], "seeds": 0, "methods": ["kmeans"]}), registry
    )[0]
    variants = [
        replace(job, seed=1),
        replace(job, input_size=16),
        replace(job, resize_filter="nearest"),
        replace(job, params={**job.params, "n_init": 10}),
        replace(job, dataset="usps"),
        replace(job, dataset_variant="test"),
        replace(job, channels="grey"),
    ]
    keys = {job.run_key} | {v.run_key for v in variants}
    assert len(keys) == 1 + len(variants)


def test_parameters_declared_out_of_the_run_key_do_not_change_it(registry):
    job = expand(
        build_sweep(registry, {"datasets": ["digits"], "seeds": 0, "methods": ["kmeans"]}), registry
    )[0]
    threads = replace(job, params={**job.params, "threads": 4})
    assert threads.run_key != job.run_key
    assert replace(threads, unkeyed=("threads",)).run_key == replace(job, unkeyed=("threads",)).run_key


def test_grey_converts_colour_datasets_only_and_keeps_native_keys(registry):
    native = expand(
        build_sweep(registry, {"datasets": ["digits", "cifar10"], "methods": ["kmeans"]}), registry
    )
    grey = expand(
        build_sweep(registry, {"datasets": ["digits", "cifar10"], "methods": ["kmeans"], "channels": "grey"}),
        registry,
    )
    assert [(j.dataset, j.channels) for j in grey][::3] == [("digits", "native"), ("cifar10", "grey")]
    same = [a.run_key == b.run_key for a, b in zip(native, grey, strict=True)]
    assert same == [True] * 3 + [False] * 3  # digits has no colour to convert: the same jobs
