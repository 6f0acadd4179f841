"""DLFC layers: TensorFlow "SAME" padding, the autoencoders' shapes and parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness_dlfc.autoencoders import ConvAutoencoder, MLPAutoencoder, build_autoencoder  # noqa: E402
from harness_dlfc.padding import SameConv2d, SameConvTranspose2d, same_padding  # noqa: E402


def _ones_conv(cls, stride: int):
    layer = cls(1, 1, 3, stride=stride)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    return layer


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(28, 3, 2, (0, 1)), (14, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (28, 3, 1, (1, 1)), (5, 1, 1, (0, 0))],
    ids=["even-s2", "even-s2-14", "odd-s2", "s1", "k1"],
)
def test_same_padding_splits_like_tensorflow(size, kernel, stride, expected):
    # TF puts the odd extra pixel after the data.
    assert same_padding(size, kernel, stride) == expected


def test_the_convolution_form_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HARNESS_DLFC_CONV", "matmul")
    model = ConvAutoencoder((28, 28, 1), 10)
    layers = [m for m in model.modules() if isinstance(m, SameConv2d | SameConvTranspose2d)]
    assert len(layers) == 5 and all(m.as_matmul for m in layers)
    monkeypatch.delenv("HARNESS_DLFC_CONV")
    assert not any(m.as_matmul for m in ConvAutoencoder((28, 28, 1), 10).modules() if hasattr(m, "as_matmul"))
    monkeypatch.setenv("HARNESS_DLFC_CONV", "cudnn")
    with pytest.raises(ValueError, match=r"\$HARNESS_DLFC_CONV must be 'native' or 'matmul', got 'cudnn'"):
        SameConv2d(1, 1, 3)


def test_strided_conv_pads_after_the_data_hand_computed():
    # 4x4 ramp, 3x3 kernel of ones, stride 2: TF pads 0 before / 1 after, so each output is the
    # sum of the window starting at (2i, 2j). Computed by hand.
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = _ones_conv(SameConv2d, 2)(x)
    assert out[0, 0].tolist() == [[45.0, 39.0], [66.0, 50.0]]
    # PyTorch's symmetric padding=1 would give 10 in the corner instead of 45.
    sym = torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3), stride=2, padding=1)
    assert sym[0, 0, 0, 0].item() == 10.0


def test_strided_transposed_conv_keeps_the_first_outputs_hand_computed():
    # 2x2 input, 3x3 kernel of ones, stride 2: the full 5x5 result scatters each input into a 3x3
    # block at (2i, 2j); TF "SAME" keeps rows/cols 0..3 (the first 2n), PyTorch's padding=1,
    # output_padding=1 keeps 1..4.
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    out = _ones_conv(SameConvTranspose2d, 2)(x)
    assert out[0, 0].tolist() == [
        [1.0, 1.0, 3.0, 2.0],
        [1.0, 1.0, 3.0, 2.0],
        [4.0, 4.0, 10.0, 6.0],
        [3.0, 3.0, 7.0, 4.0],
    ]
    torch_style = torch.nn.functional.conv_transpose2d(
        x, torch.ones(1, 1, 3, 3), stride=2, padding=1, output_padding=1
    )
    assert torch_style[0, 0, 0].tolist() == [1.0, 3.0, 2.0, 2.0]


@pytest.mark.parametrize("as_matmul", [False, True], ids=["conv", "matmul"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [4, 5, 6])
def test_layers_match_a_direct_numpy_definition(stride, size, as_matmul):
    # Random (asymmetric) kernels against the textbook definitions, with TF's padding rule; in
    # both forms (cuDNN/oneDNN convolution, and the unfold + matmul of the seed-stacked model).
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.standard_normal((size, size)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)

    conv = SameConv2d(1, 1, 3, stride=stride)
    tconv = SameConvTranspose2d(1, 1, 3, stride=stride)
    with torch.no_grad():
        for layer in (conv, tconv):
            layer.weight.copy_(torch.from_numpy(k).view(1, 1, 3, 3))
            layer.bias.zero_()
            layer.as_matmul = as_matmul
    xt = torch.from_numpy(x).view(1, 1, size, size)

    before, after = same_padding(size, 3, stride)
    padded = np.pad(x, ((before, after), (before, after)))
    n_out = -(-size // stride)
    ref = np.array(
        [
            [
                (padded[i * stride : i * stride + 3, j * stride : j * stride + 3] * k).sum()
                for j in range(n_out)
            ]
            for i in range(n_out)
        ]
    )
    np.testing.assert_allclose(conv(xt)[0, 0].detach().numpy(), ref, rtol=1e-5, atol=1e-5)

    full = np.zeros(((size - 1) * stride + 3,) * 2, dtype=np.float64)
    for i in range(size):
        for j in range(size):
            full[i * stride : i * stride + 3, j * stride : j * stride + 3] += x[i, j] * k
    top, _ = same_padding(size * stride, 3, stride)
    ref_t = full[top : top + size * stride, top : top + size * stride]
    np.testing.assert_allclose(tconv(xt)[0, 0].detach().numpy(), ref_t, rtol=1e-5, atol=1e-5)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("attention", "count"), [(False, 140_363), (True, 140_473)])
def test_conv_autoencoder_matches_the_keras_model(attention, count):
    model = ConvAutoencoder((28, 28, 1), 10, attention)
    assert _n_params(model) == count
    x = torch.rand(3, 1, 28, 28)
    h1 = torch.relu(model.conv1(x))
    assert h1.shape == (3, 32, 14, 14)
    assert model.conv2(h1).shape == (3, 64, 7, 7)
    z = model.encode(x)
    assert z.shape == (3, 10)
    out = model.decode(z)
    assert out.shape == (3, 1, 28, 28) and 0 < out.min() and out.max() < 1  # sigmoid output
    assert model.conv1.weight.shape == (32, 1, 3, 3) and model.latent.weight.shape == (10, 3136)
    assert model.deconv1.weight.shape == (64, 64, 3, 3) and model.deconv3.weight.shape == (32, 1, 3, 3)


def test_attention_gates_the_embedding_with_a_softmax():
    model = ConvAutoencoder((28, 28, 1), 10, attention=True)
    x = torch.rand(4, 1, 28, 28)
    h = torch.relu(model.conv2(torch.relu(model.conv1(x))))
    z = model.latent(h.permute(0, 2, 3, 1).flatten(1))
    gate = torch.softmax(model.attention.dense(z), dim=-1)
    torch.testing.assert_close(model.encode(x), z * gate)


@pytest.mark.parametrize(
    ("size", "channels", "k"), [(8, 1, 10), (16, 1, 10), (30, 1, 20), (32, 3, 10), (128, 1, 20)]
)
def test_conv_autoencoder_takes_every_harness_size(size, channels, k):
    model = ConvAutoencoder((size, size, channels), k)
    x = torch.rand(2, channels, size, size)
    assert model.encode(x).shape == (2, k)
    assert model(x).shape == x.shape  # sizes not divisible by 4 are cropped back


def test_keras_initialisation_glorot_uniform_and_zero_biases():
    torch.manual_seed(0)
    model = ConvAutoencoder((28, 28, 1), 10)
    assert all(
        float(b.detach().abs().max()) == 0.0 for n, b in model.named_parameters() if n.endswith("bias")
    )
    limit = np.sqrt(6 / (3136 + 10))  # glorot: sqrt(6 / (fan_in + fan_out))
    w = model.latent.weight.detach()
    assert float(w.abs().max()) <= limit and float(w.abs().max()) > 0.9 * limit
    limit_conv = np.sqrt(6 / (9 * 32 + 9 * 64))
    assert float(model.conv2.weight.detach().abs().max()) <= limit_conv


@pytest.mark.parametrize(
    ("include_layer", "widths"), [(None, [784, 500, 500, 2000, 10]), (64, [784, 500, 500, 2000, 64, 10])]
)
def test_mlp_autoencoder_is_decs_with_an_embedding_of_size_k(include_layer, widths):
    model = build_autoencoder("ae", (28, 28, 1), 10, include_layer=include_layer)
    assert isinstance(model, MLPAutoencoder)
    linear = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [m.in_features for m in linear] + [linear[-1].out_features] == widths
    expected = (
        sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True)) * 2
        - sum(widths[1:])
        + sum(widths[:-1])
    )
    assert _n_params(model) == expected
    x = torch.rand(5, 1, 28, 28)
    assert model.encode(x).shape == (5, 10) and model(x).shape == x.shape


def test_dae_is_the_conv_autoencoder_and_include_layer_is_ignored_by_it():
    a = build_autoencoder("dae", (28, 28, 1), 10, include_layer=64)
    assert isinstance(a, ConvAutoencoder) and _n_params(a) == 140_363
    with pytest.raises(ValueError, match="mode must be one of 'ae', 'cae', 'dae', got 'vae'"):
        build_autoencoder("vae", (28, 28, 1), 10)
