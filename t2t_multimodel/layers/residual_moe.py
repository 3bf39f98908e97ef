"""`ResidualMoE`: the MoE as a residual sublayer, `x <- LN(x + MoE(x))`.

The paper (section 2.4) puts one sparsely-gated mixture-of-experts layer
(section 2.3, `moe.SparseMoE`) in the middle of the encoder and of the
decoder without saying how it is wired in; as in the T2T code closest to the
paper (`slicenet`), it is a residual sublayer followed by a LayerNorm. The
encoder and the decoder both use this one layer.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras

from t2t_multimodel.layers import moe


def _enclosing_scope(path: str) -> Any:
    """A name scope equal to the one around the layer at `path`.

    `keras.name_scope(name, override_parent=...)` rebuilds the parent path;
    at the top level (no parent) nothing is changed.
    """
    parent = path.rpartition("/")[0]
    if not parent:
        return contextlib.nullcontext()
    grandparent, _, name = parent.rpartition("/")
    return keras.name_scope(name, override_parent=grandparent)


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ResidualMoE(keras.layers.Layer):
    """`LN(x + SparseMoE(x))`: the body's mixture-of-experts sublayer.

    The sublayers are `moe` (a `SparseMoE`) and `norm` (a LayerNorm). Their
    weights are named as if they were sublayers of the layer holding this
    one: `<parent>/moe/w_gate`, `<parent>/moe_norm/gamma`. Those are the
    checkpoint keys of the encoder and decoder from before this layer
    existed, so their checkpoints still load (a top-level `ResidualMoE` has
    `residual_moe/moe/...`).

    Args:
      hidden_dim: d, the input and output depth.
      intermediate_dim: h, the hidden depth of each expert.
      num_experts: E.
      top_k: experts per position (4 in the paper).
      loss_coef: coefficient of the MoE load-balancing loss.
      capacity_factor: MoE expert capacity (None: no token is dropped).
      layer_norm_epsilon: epsilon of the LayerNorm.
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, L, d]`.
      training: enables the MoE gate noise.
      padding_mask: bool `[B, L]`, True at real positions; padded positions
        are not routed (their MoE output is 0, so they get `LN(x)`).

    Returns:
      `[B, L, d]`. The MoE adds its load-balancing loss with `add_loss`.
    """

    def __init__(
        self,
        hidden_dim: int,
        intermediate_dim: int,
        num_experts: int,
        *,
        top_k: int = 4,
        loss_coef: float = 1e-2,
        capacity_factor: float | None = None,
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.loss_coef = loss_coef
        self.capacity_factor = capacity_factor
        self.layer_norm_epsilon = layer_norm_epsilon
        self.moe = moe.SparseMoE(
            hidden_dim,
            intermediate_dim,
            num_experts,
            top_k=top_k,
            loss_coef=loss_coef,
            capacity_factor=capacity_factor,
            name="moe",
        )
        self.norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="moe_norm"
        )

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, self.hidden_dim)
        # Built in the scope around this layer, so the weight paths (the
        # checkpoint keys) are those of the MoE and LayerNorm that the
        # encoder and decoder held directly before (see the class doc).
        with _enclosing_scope(self.path):
            self.moe.build(shape)
            self.norm.build(shape)

    def call(
        self, x: Any, *, training: bool | None = None, padding_mask: Any = None
    ) -> Any:
        y = self.moe(x, training=training, padding_mask=padding_mask)
        return self.norm(x + y)

    def infer(self, x: Any) -> Any:
        """The inference output of a few rows (one decoding step).

        `LN(x + SparseMoE.infer(x))`: equal to `call(x, training=False)`
        up to float rounding, with static shapes and no loss added.
        """
        return self.norm(x + self.moe.infer(x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_experts": self.num_experts,
                "top_k": self.top_k,
                "loss_coef": self.loss_coef,
                "capacity_factor": self.capacity_factor,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
