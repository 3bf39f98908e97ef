"""`SymbolModality`: the language modality net (paper section 2.1).

One shared subword vocabulary serves every text of every task; the net is a
learned embedding in (`W_E x`) and a learned linear map plus softmax out
(`Softmax(W_S x)`). As in T2T, embeddings are scaled by sqrt(d) and the
padding id 0 embeds to an exact zero vector. T2T v1.9 kept three separate
`[V, d]` matrices (`input_emb`, `target_emb`, `softmax`); sharing them is a
constructor option.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from t2t_multimodel.modalities import base


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class SymbolModality(base.Modality):
    """Token embedding in, linear + softmax out, over one shared vocabulary.

    Args:
      hidden_dim: the body width d.
      vocab_size: the vocabulary size V (id 0 = padding, 1 = EOS).
      shared_embeddings: if True, inputs and targets use one embedding matrix
        (`input_emb`); otherwise targets have their own `target_emb`.
      shared_softmax: if True, the softmax reuses the target embedding matrix
        (weight tying); otherwise it has its own `softmax` matrix.
      multiply_by_sqrt_depth: scale embeddings by sqrt(d) (T2T `sqrt_depth`).
      embeddings_initializer: initializer of every `[V, d]` matrix; None is
        T2T's N(0, d^-0.5).
      **kwargs: `keras.layers.Layer` arguments.

    `bottom(ids [B, L], padding_mask=None)` returns hidden `[B, L, d]` with the
    mask `ids != 0` (or the given `padding_mask`); `targets_bottom(ids [B, T])`
    returns `[B, T, d]`; `top(h [B, T, d])` returns logits `h @ W^T`
    `[B, T, V]` (no bias). Loss weights are `targets != 0`.
    """

    def __init__(
        self,
        hidden_dim: int,
        vocab_size: int,
        *,
        shared_embeddings: bool = False,
        shared_softmax: bool = False,
        multiply_by_sqrt_depth: bool = True,
        embeddings_initializer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(hidden_dim, **kwargs)
        self.vocab_size = vocab_size
        self.shared_embeddings = shared_embeddings
        self.shared_softmax = shared_softmax
        self.multiply_by_sqrt_depth = multiply_by_sqrt_depth
        self.embeddings_initializer = (
            None
            if embeddings_initializer is None
            else keras.initializers.get(embeddings_initializer)
        )

    def _initializer(self) -> keras.initializers.Initializer:
        if self.embeddings_initializer is not None:
            return self.embeddings_initializer
        return keras.initializers.RandomNormal(stddev=self.hidden_dim**-0.5)

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (self.vocab_size, self.hidden_dim)
        self.input_emb = self.add_weight(
            shape=shape, initializer=self._initializer(), name="input_emb"
        )
        self.target_emb = (
            self.input_emb
            if self.shared_embeddings
            else self.add_weight(
                shape=shape, initializer=self._initializer(), name="target_emb"
            )
        )
        self.softmax = (
            self.target_emb
            if self.shared_softmax
            else self.add_weight(
                shape=shape, initializer=self._initializer(), name="softmax"
            )
        )
        self.built = True

    def _embed(self, table: Any, ids: Any) -> Any:
        ids = ops.cast(ids, "int32")
        emb = ops.take(table, ids, axis=0)  # [B, L, d]
        if self.multiply_by_sqrt_depth:
            emb = emb * math.sqrt(self.hidden_dim)
        # T2T zeroes the padding rows (id 0) so padding is exactly 0.
        return emb * ops.expand_dims(ops.cast(ids != 0, emb.dtype), -1)

    def bottom(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> base.ModalityOutput:
        self.ensure_built()
        mask = inputs != 0 if padding_mask is None else padding_mask
        return {
            "hidden": self._embed(self.input_emb, inputs),
            "mask": ops.cast(mask, "bool"),
            "spatial_shape": None,
        }

    def targets_bottom(
        self, targets: Any, *, training: bool | None = None
    ) -> Any:
        self.ensure_built()
        return self._embed(self.target_emb, targets)

    def top(
        self,
        body_output,
        *,
        training=None,
        spatial_shape=None,
        padding_mask=None,
    ):
        self.ensure_built()
        # [B, T, d] x [V, d] -> [B, T, V], as one matmul: an ellipsis einsum's
        # gradient materializes [B, T, V, d] in TF.
        shape = ops.shape(body_output)
        flat = ops.reshape(body_output, (-1, self.hidden_dim))  # [B * T, d]
        logits = ops.matmul(flat, ops.transpose(self.softmax))  # [B * T, V]
        return ops.reshape(logits, (*shape[:-1], self.vocab_size))

    def target_weights(self, targets: Any, targets_mask: Any = None) -> Any:
        weights = ops.cast(targets != 0, "float32")
        if targets_mask is not None:
            weights = weights * ops.cast(targets_mask, "float32")
        return weights

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape) + (self.hidden_dim,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "shared_embeddings": self.shared_embeddings,
                "shared_softmax": self.shared_softmax,
                "multiply_by_sqrt_depth": self.multiply_by_sqrt_depth,
                "embeddings_initializer": (
                    None
                    if self.embeddings_initializer is None
                    else keras.initializers.serialize(
                        self.embeddings_initializer
                    )
                ),
            }
        )
        return config
