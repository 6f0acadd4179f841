"""Where DLFC's time goes on a GPU: CUDA graphs vs eager, cuDNN settings, 1 vs 10 stacked seeds,
native (cuDNN) vs matmul convolutions, and torch.profiler tables of one eager epoch. Needs CUDA and MNIST under $HARNESS_DATA_DIR:

    HARNESS_DATA_DIR=../shared/data python benchmarks/profile_dlfc.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from harness.plugins import load_registry
from harness_dlfc.autoencoders import ConvAutoencoder
from harness_dlfc.batched import StackedModels, cluster_stacked, pretrain_stacked
from harness_dlfc.clustering import ClusteringLayer, cluster
from harness_dlfc.pretrain import pretrain

DEVICE = torch.device("cuda")


def _models(seeds: int) -> list[ConvAutoencoder]:
    out = []
    for s in range(seeds):
        torch.manual_seed(s)
        out.append(ConvAutoencoder((28, 28, 1), 10).to(DEVICE))
    return out


def _timed(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def seconds_per_epoch(x: torch.Tensor, seeds: int, epochs: int) -> float:
    models = _models(seeds)
    kwargs = dict(epochs=epochs, batch_size=256, learning_rate=1.0)
    if seeds == 1:
        return (
            _timed(lambda: pretrain(models[0], x, generator=torch.Generator().manual_seed(0), **kwargs))
            / epochs
        )
    generators = [torch.Generator().manual_seed(s) for s in range(seeds)]
    return (
        _timed(lambda: pretrain_stacked(StackedModels(models), x, generators=generators, **kwargs)) / epochs
    )


def seconds_per_interval(x: torch.Tensor, seeds: int, intervals: int = 3) -> float:
    """One target update over all of x and 140 mini-batch steps."""
    models = _models(seeds)
    rng = np.random.default_rng(0)
    centres = torch.from_numpy(rng.normal(size=(seeds, 10, 10)).astype(np.float32)).to(DEVICE)
    init = [rng.integers(0, 10, len(x)) for _ in range(seeds)]
    kwargs = dict(batch_size=256, max_iterations=140 * intervals, interval=140, tolerance=0.0)
    if seeds == 1:
        layer = ClusteringLayer(10, 10).to(DEVICE)
        with torch.no_grad():
            layer.centres.copy_(centres[0])
        return _timed(lambda: cluster(models[0], layer, x, init[0], **kwargs)) / intervals
    return (
        _timed(lambda: cluster_stacked(StackedModels(models), centres.clone(), x, init, **kwargs)) / intervals
    )


def main() -> None:
    data = load_registry().dataset("mnist").load(Path(os.environ["HARNESS_DATA_DIR"]))
    x = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2))).to(DEVICE)
    for deterministic, benchmark in ((True, False), (False, True)):
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, benchmark
        label = f"cudnn det={deterministic} bench={benchmark}"
        os.environ["HARNESS_DLFC_CONV"] = "native"
        for graphs in ("1", "0"):
            os.environ["HARNESS_DLFC_GRAPHS"] = graphs
            seconds_per_epoch(x, 1, 1)  # warm-up
            epoch, interval = seconds_per_epoch(x, 1, 4), seconds_per_interval(x, 1)
            print(
                f"{label} graphs={graphs}: 1 seed native {epoch:.3f} s/epoch, {interval:.3f} s/140 it",
                flush=True,
            )
        os.environ["HARNESS_DLFC_GRAPHS"] = "1"
        # native: cuDNN convolutions (grouped ones for stacked seeds); matmul: unfold + (batched)
        # matmul, in FP32 or in TF32 (as cuDNN's convolutions already run by default)
        for form, tf32 in (("native", False), ("matmul", False), ("matmul", True)):
            os.environ["HARNESS_DLFC_CONV"] = form
            torch.backends.cuda.matmul.allow_tf32 = tf32
            for seeds, epochs, intervals in ((1, 4, 3), (10, 2, 2)):
                if form == "native" and seeds == 1:
                    continue  # measured above
                seconds_per_epoch(x, seeds, 1)
                epoch = seconds_per_epoch(x, seeds, epochs)
                interval = seconds_per_interval(x, seeds, intervals)
                print(
                    f"{label} graphs=1: {seeds} seed(s) {form} tf32={tf32}: {epoch:.3f} s/epoch, "
                    f"{interval:.3f} s/140 it",
                    flush=True,
                )
        torch.backends.cuda.matmul.allow_tf32 = False

    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    os.environ["HARNESS_DLFC_GRAPHS"] = "0"
    for seeds, form in ((1, "native"), (1, "matmul"), (10, "native"), (10, "matmul")):
        os.environ["HARNESS_DLFC_CONV"] = form
        seconds_per_epoch(x, seeds, 1)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            seconds_per_epoch(x, seeds, 1)
        print(f"== profile eager, {seeds} seed(s), {form} convolutions, one epoch")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))


if __name__ == "__main__":
    main()
