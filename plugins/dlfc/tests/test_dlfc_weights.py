"""DLFC weight files: the authors' Keras .h5 files, the plugin's own files, and clear mismatches.

Tests with the published files skip where ``../shared/models`` (or $HARNESS_TEST_MODELS) is absent.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness_dlfc import weights  # noqa: E402
from harness_dlfc.autoencoders import ConvAutoencoder, build_autoencoder  # noqa: E402
from harness_dlfc.weights import WeightsMismatchError  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def dlfc_models() -> Path:
    env = os.environ.get("HARNESS_TEST_MODELS")
    path = (Path(env) if env else ROOT.parent / "shared" / "models") / "dlfc"
    if not (path / "mnist_ae_with_attention.h5").is_file():
        pytest.skip(f"DLFC's published weights not found in {path} (set HARNESS_TEST_MODELS)")
    return path


@pytest.fixture(autouse=True)
def _no_pickle(monkeypatch):
    """Loading weights must never unpickle anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("weights loading tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)


def write_keras_file(model: ConvAutoencoder, path: Path) -> None:
    """Write ``model`` in Keras 2's save_weights layout (what the authors' files look like)."""
    enc = [("conv2d_7", model.conv1), ("conv2d_8", model.conv2), ("latent_vector", model.latent)]
    if model.attention is not None:
        enc.append(("attention_vec", model.attention.dense))
    dec = [
        ("dense_4", model.expand),
        ("conv2d_transpose_7", model.deconv1),
        ("conv2d_transpose_8", model.deconv2),
        ("conv2d_transpose_9", model.deconv3),
    ]
    with h5py.File(path, "w") as fh:
        fh.attrs["layer_names"] = [b"encoder_input", b"encoder", b"decoder"]
        fh.create_group("encoder_input").attrs["weight_names"] = np.array([], dtype=np.float64)
        for group_name, layers in (("encoder", enc), ("decoder", dec)):
            group = fh.create_group(group_name)
            names = []
            for name, module in layers:
                w = module.weight.detach().numpy()
                kernel = w.T if isinstance(module, torch.nn.Linear) else w.transpose(2, 3, 1, 0)
                group[f"{name}/kernel:0"] = kernel
                group[f"{name}/bias:0"] = module.bias.detach().numpy()
                names += [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group.attrs["weight_names"] = names


@pytest.mark.parametrize("attention", [False, True])
def test_keras_layout_round_trip_gives_the_same_network(tmp_path, attention):
    torch.manual_seed(1)
    source = ConvAutoencoder((28, 28, 1), 10, attention)
    write_keras_file(source, tmp_path / "w.h5")
    target = ConvAutoencoder((28, 28, 1), 10, attention)
    assert weights.load(target, tmp_path / "w.h5") == "keras"
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(target(x), source(x))


def test_own_format_round_trip_with_attributes(tmp_path):
    torch.manual_seed(2)
    source = build_autoencoder("ae", (8, 8, 1), 10, attention=True, include_layer=32)
    weights.save(source, tmp_path / "own.h5", pretrain_loss=np.array([0.5, 0.25]))
    target = build_autoencoder("ae", (8, 8, 1), 10, attention=True, include_layer=32)
    assert weights.load(target, tmp_path / "own.h5") == "harness-dlfc"
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(target(x), source(x))
    assert weights.read_attr(tmp_path / "own.h5", "pretrain_loss").tolist() == [0.5, 0.25]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("file_attention", "model_kwargs", "message"),
    [
        (
            True,
            {},
            "was saved with the attention gate, but the model was built without it (set dlfc.attention=true",
        ),
        (
            False,
            {"attention": True},
            "was saved without the attention gate, but the model was built with it (set dlfc.attention=false",
        ),
        (
            False,
            {"n_clusters": 20},
            "layer 'encoder/latent_vector' kernel has shape (3136, 10), the model (conv autoencoder, input 28x28x1, K=20, attention=False) expects (3136, 20)",
        ),
        (
            False,
            {"size": 16},
            "layer 'encoder/latent_vector' kernel has shape (3136, 10), the model (conv autoencoder, input 16x16x1, K=10, attention=False) expects (1024, 10)",
        ),
        (
            False,
            {"channels": 3},
            "layer 'encoder/conv2d_7' kernel has shape (3, 3, 1, 32), the model (conv autoencoder, input 28x28x3",
        ),
    ],
    ids=["attention-file", "no-attention-file", "k20", "16px", "rgb"],
)
def test_a_file_that_does_not_fit_names_the_file_layer_and_shapes(
    tmp_path, file_attention, model_kwargs, message
):
    write_keras_file(ConvAutoencoder((28, 28, 1), 10, file_attention), tmp_path / "keras.h5")
    size, channels = model_kwargs.get("size", 28), model_kwargs.get("channels", 1)
    model = ConvAutoencoder(
        (size, size, channels), model_kwargs.get("n_clusters", 10), model_kwargs.get("attention", False)
    )
    with pytest.raises(WeightsMismatchError) as info:
        weights.load(model, tmp_path / "keras.h5")
    assert str(tmp_path / "keras.h5") in str(info.value) and message in str(info.value)


def test_conv_file_into_the_mlp_says_how_many_layers_each_has(tmp_path):
    write_keras_file(ConvAutoencoder((28, 28, 1), 10), tmp_path / "keras.h5")
    with pytest.raises(
        WeightsMismatchError, match=r"has 7 weight layers \(encoder/conv2d_7, .*expects 8 \(encoder.0,"
    ):
        weights.load(build_autoencoder("ae", (28, 28, 1), 10), tmp_path / "keras.h5")


def test_own_file_into_another_architecture(tmp_path):
    weights.save(build_autoencoder("ae", (8, 8, 1), 10), tmp_path / "own.h5")
    with pytest.raises(
        WeightsMismatchError,
        match=r"own.h5' \(MLP autoencoder, .*\) does not fit the model \(conv autoencoder.*missing conv1.bias",
    ):
        weights.load(ConvAutoencoder((8, 8, 1), 10), tmp_path / "own.h5")
    with pytest.raises(
        WeightsMismatchError,
        match=r"encoder.0.weight has shape \(500, 64\), the model .* expects \(500, 256\)",
    ):
        weights.load(build_autoencoder("ae", (16, 16, 1), 10), tmp_path / "own.h5")


def test_missing_and_non_hdf5_files(tmp_path):
    model = ConvAutoencoder((28, 28, 1), 10)
    with pytest.raises(
        FileNotFoundError, match=r"weights file '.*nope.h5' not found \(parameter ae_weights\)"
    ):
        weights.load(model, tmp_path / "nope.h5")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04not hdf5")
    with pytest.raises(WeightsMismatchError, match="model.pkl' is not an HDF5 file"):
        weights.load(model, tmp_path / "model.pkl")


# ------------------------------------------------------------------------------------------------
# The authors' published files
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fmnist"])
@pytest.mark.parametrize("attention", [False, True])
def test_published_files_load_only_into_the_matching_architecture(dlfc_models, name, attention):
    path = dlfc_models / f"{name}_ae_{'with' if attention else 'without'}_attention.h5"
    model = ConvAutoencoder((28, 28, 1), 10, attention)
    assert weights.load(model, path) == "keras"
    assert sum(p.numel() for p in model.parameters()) == (140_473 if attention else 140_363)
    with pytest.raises(WeightsMismatchError, match="attention gate"):
        weights.load(ConvAutoencoder((28, 28, 1), 10, not attention), path)


@pytest.mark.data
def test_published_weights_need_tensorflow_padding(dlfc_models, shared_data):
    # The first 2,000 Fashion-MNIST training images: TF "SAME" semantics reconstruct them about as
    # well as the whole set (MSE 0.0103, spec §1.9); PyTorch's symmetric padding is ~5x worse.
    from harness_datasets.mnist import FashionMNIST

    x = FashionMNIST().load(shared_data).images[:2000]
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    model = ConvAutoencoder((28, 28, 1), 10)
    weights.load(model, dlfc_models / "fmnist_ae_without_attention.h5")
    with torch.no_grad():
        tf_mse = torch.nn.functional.mse_loss(model(x), x).item()
        # the same weights with PyTorch's own padding=1 / output_padding=1
        F = torch.nn.functional
        h = F.relu(F.conv2d(x, model.conv1.weight, model.conv1.bias, stride=2, padding=1))
        h = F.relu(F.conv2d(h, model.conv2.weight, model.conv2.bias, stride=2, padding=1))
        z = model.latent(h.permute(0, 2, 3, 1).flatten(1))
        h = model.expand(z).view(-1, 7, 7, 64).permute(0, 3, 1, 2)
        h = F.relu(
            F.conv_transpose2d(
                h, model.deconv1.weight, model.deconv1.bias, stride=2, padding=1, output_padding=1
            )
        )
        h = F.relu(
            F.conv_transpose2d(
                h, model.deconv2.weight, model.deconv2.bias, stride=2, padding=1, output_padding=1
            )
        )
        sym = torch.sigmoid(F.conv_transpose2d(h, model.deconv3.weight, model.deconv3.bias, padding=1))
        sym_mse = F.mse_loss(sym, x).item()
    assert 0.008 < tf_mse < 0.013
    assert sym_mse > 3 * tf_mse


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(("attention", "acc", "nmi"), [(False, 0.595, 0.623), (True, 0.495, 0.547)])
def test_kmeans_on_the_published_fmnist_latent_space(dlfc_models, shared_data, attention, acc, nmi):
    # Spec §1.9: k-means (n_init 20) on the latent space of all 70,000 Fashion-MNIST images.
    from sklearn.cluster import KMeans

    from harness.metrics import score
    from harness_datasets.mnist import FashionMNIST
    from harness_dlfc.clustering import encode_all

    data = FashionMNIST().load(shared_data)
    assert len(data.images) == 70_000
    x = torch.from_numpy(data.images.transpose(0, 3, 1, 2).copy())
    model = ConvAutoencoder((28, 28, 1), 10, attention)
    weights.load(model, dlfc_models / f"fmnist_ae_{'with' if attention else 'without'}_attention.h5")
    model.eval()
    z = encode_all(model.encode, x).numpy()
    labels = KMeans(10, n_init=20, random_state=0).fit_predict(z)
    scores = score(data.labels, labels)
    assert scores["acc"] == pytest.approx(acc, abs=0.005)
    assert scores["nmi_geometric"] == pytest.approx(nmi, abs=0.005)
