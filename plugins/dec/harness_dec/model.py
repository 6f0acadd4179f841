"""The networks: DEC-keras' fully connected autoencoder and the Student-t clustering layer.

Imports Keras, so it is imported only inside ``fit_predict``, after the backend is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

HIDDEN = (500, 500, 2000, 10)
"""DEC-keras' dims after the input, for every dataset (the embedding stays 10-d even with K=20)."""


def initializer(name: str) -> keras.initializers.Initializer:
    """A fresh kernel initializer by DEC-keras' name for it.

    ``variance_scaling`` is VarianceScaling(1/3, 'fan_in', 'uniform') = U(±sqrt(1/fan_in)).
    Biases stay zeros (Keras' default), as in DEC-keras.
    """
    if name == "variance_scaling":
        return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")
    if name == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    raise ValueError(f"dec: unknown init {name!r}; valid: 'glorot_uniform', 'variance_scaling'")


def autoencoder(
    input_dim: int, hidden: Sequence[int] = HIDDEN, init: str = "glorot_uniform"
) -> tuple[keras.Model, keras.Model]:
    """The symmetric autoencoder [D, *hidden] and its encoder, with DEC-keras' layer names.

    ReLU inside; the embedding (``encoder_3``) and the reconstruction (``decoder_0``) are linear.
    The names match DEC-keras, so its saved ``ae_weights.h5`` files load by position and name.
    """
    x = keras.Input((input_dim,), name="input")
    h = x
    last = len(hidden) - 1
    for i, units in enumerate(hidden):
        h = layers.Dense(
            units,
            activation=None if i == last else "relu",
            kernel_initializer=initializer(init),
            name=f"encoder_{i}",
        )(h)
    z = h
    for i in range(last, 0, -1):
        h = layers.Dense(
            hidden[i - 1], activation="relu", kernel_initializer=initializer(init), name=f"decoder_{i}"
        )(h)
    out = layers.Dense(input_dim, kernel_initializer=initializer(init), name="decoder_0")(h)
    return keras.Model(x, out, name="autoencoder"), keras.Model(x, z, name="encoder")


class ClusteringLayer(layers.Layer):
    """Soft assignment of embeddings to learnable centres with a Student-t kernel (DEC eq. 1).

    q_ij = (1 + ||z_i - mu_j||² / alpha)^(-(alpha+1)/2), normalised over j. ``alpha = 1`` as in
    DEC. The centres are created in :meth:`build` (glorot, as DEC-keras) and then overwritten
    with the k-means centres before training.
    """

    def __init__(self, n_clusters: int, alpha: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_clusters = n_clusters
        self.alpha = alpha

    def build(self, input_shape) -> None:
        self.clusters = self.add_weight(
            shape=(self.n_clusters, input_shape[-1]), initializer="glorot_uniform", name="clusters"
        )

    def call(self, z):
        squared = ops.sum(ops.square(ops.expand_dims(z, axis=1) - self.clusters), axis=2)
        q = ops.power(1.0 + squared / self.alpha, -(self.alpha + 1.0) / 2.0)
        return q / ops.sum(q, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self) -> dict:
        return super().get_config() | {"n_clusters": self.n_clusters, "alpha": self.alpha}


def dec_model(encoder: keras.Model, n_clusters: int) -> keras.Model:
    """Encoder → clustering layer; the decoder is dropped (DEC has no reconstruction term)."""
    q = ClusteringLayer(n_clusters, name="clustering")(encoder.output)
    return keras.Model(encoder.input, q, name="dec")
