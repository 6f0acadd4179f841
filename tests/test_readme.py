"""The README's "Write a plugin" examples, as a newcomer would use them: the code blocks are taken
from README.md, written out as modules, and run through ``harness run --plugin`` and the contract
kit, so that they cannot fall behind the code."""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode
from harness_reports import load_runs

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Write a plugin"


def plugin_examples() -> dict[str, str]:
    """The section's code blocks by the file name on their first line (``# my_method.py``)."""
    text = README.read_text()
    start = text.index(f"\n{SECTION}\n")
    section = text[start : text.index("\n## ", start + len(SECTION) + 2)]
    blocks = re.findall(r"```(?:python|toml)\n# (\S+)\n(.*?)```", section, flags=re.DOTALL)
    return {name: code for name, code in blocks}


def _shapes(path: Path) -> str:
    """What the dataset example reads: 1,000 uint8 images of four classes, a bright quadrant each."""
    rng = np.random.default_rng(0)
    labels = np.arange(1000) % 4
    images = rng.integers(0, 60, size=(1000, 32, 32, 1), dtype=np.uint8)
    for c in range(4):
        rows, cols = divmod(c, 2)
        images[labels == c, rows * 16 : rows * 16 + 16, cols * 16 : cols * 16 + 16] += 180
    path.parent.mkdir(parents=True)
    np.savez(path, images=images, labels=labels)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def examples(tmp_path, monkeypatch):
    """The examples as modules in a fresh folder on sys.path, with the data the dataset reads."""
    blocks = plugin_examples()
    assert {"my_method.py", "my_data.py", "my_metric.py", "pyproject.toml", "test_my_plugins.py"} <= set(
        blocks
    )
    digest = _shapes(tmp_path / "data" / "shapes" / "shapes.npz")
    assert "<its sha256>" in blocks["my_data.py"]
    blocks["my_data.py"] = blocks["my_data.py"].replace("<its sha256>", digest)
    for name, code in blocks.items():
        (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    _forget_modules(blocks)
    yield tmp_path, blocks
    _forget_modules(blocks)


def _forget_modules(blocks: dict[str, str]) -> None:
    """Each test imports the examples from its own folder, not those a test before it imported."""
    for name in blocks:
        sys.modules.pop(name.removesuffix(".py"), None)


def test_the_plugin_examples_run_through_harness_run(examples):
    folder, _ = examples
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    code = main(
        [
            "run", "--plugin", "my_method", "--plugin", "my_data", "--plugin", "my_metric", "--methods", "gmm",
            "--datasets", "shapes,digits", "--seeds", "0", "--data-dir", str(folder / "data"),
            "--tracking-uri", uri, "--experiment", "readme",
        ]
    )  # fmt: skip
    assert code == ExitCode.OK
    client = MlflowClient(tracking_uri=uri)
    runs = load_runs(client, client.get_experiment_by_name("readme").experiment_id)
    finished = runs[runs.status == "FINISHED"]
    assert sorted(zip(finished.method, finished.dataset, strict=True)) == [
        ("gmm", "digits"),
        ("gmm", "shapes"),
    ]
    assert finished[finished.dataset == "shapes"].acc.item() > 0.9  # four bright quadrants: easy to find
    assert (finished.calinski_harabasz > 0).all()  # the metric example scored every run


def test_the_plugin_examples_keep_the_contract_and_their_own_tests_pass(examples, monkeypatch):
    folder, blocks = examples
    monkeypatch.chdir(folder)  # the test example names its data directory relative to here
    tests = importlib.import_module("test_my_plugins")
    names = [name for name in vars(tests) if name.startswith("test_")]
    assert len(names) == 2
    for name in names:
        getattr(tests, name)()


def test_the_pyproject_example_points_the_entry_point_at_the_method_module(examples):
    _, blocks = examples
    project = tomllib.loads(blocks["pyproject.toml"])
    assert project["project"]["entry-points"]["harness"] == {"gmm": "my_method"}
