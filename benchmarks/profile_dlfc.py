"""Where DLFC's time goes on a GPU: CUDA graphs vs eager, cuDNN settings, 1 vs 10 stacked seeds, and a
torch.profiler table of one eager epoch. Needs CUDA and MNIST under $HARNESS_DATA_DIR:

    HARNESS_DATA_DIR=../shared/data python benchmarks/profile_dlfc.py
"""
import os, sys, time
import numpy as np, torch
from pathlib import Path
from harness.plugins import load_registry
from harness_dlfc.autoencoders import ConvAutoencoder
from harness_dlfc.pretrain import pretrain
from harness_dlfc.clustering import ClusteringLayer, cluster
from harness_dlfc.batched import StackedModels, pretrain_stacked, cluster_stacked

dev = torch.device("cuda")
data = load_registry().dataset("mnist").load(Path(os.environ["HARNESS_DATA_DIR"]))
x = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2))).to(dev)

def sync(): torch.cuda.synchronize()

def time_pretrain(seeds, epochs, att=False):
    models = []
    for s in range(seeds):
        torch.manual_seed(s); models.append(ConvAutoencoder((28, 28, 1), 10, attention=att).to(dev))
    kw = dict(epochs=epochs, batch_size=256, learning_rate=1.0)
    def go():
        if seeds == 1:
            pretrain(models[0], x, generator=torch.Generator().manual_seed(0), **kw)
        else:
            pretrain_stacked(StackedModels(models), x, generators=[torch.Generator().manual_seed(s) for s in range(seeds)], **kw)
    sync(); t = time.perf_counter(); go(); sync(); return (time.perf_counter() - t) / epochs

def time_cluster(seeds, intervals=3):
    models = []
    for s in range(seeds):
        torch.manual_seed(s); models.append(ConvAutoencoder((28, 28, 1), 10).to(dev))
    rng = np.random.default_rng(0)
    centres = torch.from_numpy(rng.normal(size=(seeds, 10, 10)).astype(np.float32)).to(dev)
    init = [rng.integers(0, 10, len(x)) for _ in range(seeds)]
    kw = dict(batch_size=256, max_iterations=140 * intervals, interval=140, tolerance=0.0)
    sync(); t = time.perf_counter()
    if seeds == 1:
        layer = ClusteringLayer(10, 10).to(dev)
        with torch.no_grad(): layer.centres.copy_(centres[0])
        cluster(models[0], layer, x, init[0], **kw)
    else:
        cluster_stacked(StackedModels(models), centres.clone(), x, init, **kw)
    sync(); return (time.perf_counter() - t) / intervals

for det, bench in [(True, False), (False, True)]:
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = det, bench
    for graphs in ("1", "0"):
        os.environ["HARNESS_DLFC_GRAPHS"] = graphs
        time_pretrain(1, 1)  # warm
        e1 = time_pretrain(1, 4)
        c1 = time_cluster(1)
        print(f"cudnn det={det} bench={bench} graphs={graphs}: 1 seed {e1:.3f} s/epoch, {c1:.3f} s/140 it", flush=True)
    os.environ["HARNESS_DLFC_GRAPHS"] = "1"
    time_pretrain(10, 1)
    e10 = time_pretrain(10, 2)
    c10 = time_cluster(10, 2)
    print(f"cudnn det={det} bench={bench} graphs=1: 10 seeds {e10:.3f} s/epoch, {c10:.3f} s/140 it", flush=True)

from torch.profiler import profile, ProfilerActivity
torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
for graphs, seeds in (("0", 1), ("0", 10)):
    os.environ["HARNESS_DLFC_GRAPHS"] = graphs
    time_pretrain(seeds, 1)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        time_pretrain(seeds, 1)
    print(f"== profile eager, {seeds} seed(s), one epoch")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))
