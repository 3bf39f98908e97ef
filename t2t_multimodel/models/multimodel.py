"""`MultiModel`: modality nets around one shared body (paper section 2).

The model holds a dict of modality nets keyed by modality name (sharing is
object identity: every problem naming `"symbol"` uses the same instance) and
three swappable body components: an encoder, an optional I/O mixer and a
decoder (the paper's body, or T2T v1.9's, which has no mixer). A batch goes
`inputs -> input modality bottom -> encoder`; class-label targets then go
straight to the target modality's top (the decoder is skipped); other targets
are embedded, shifted right with the command token (a learned embedding of the
target space id, the paper's "To-German" token) in slot 0, and go through the
mixer and the decoder to the target modality's top. The model never looks at
problem names: the modality keys and `target_space_id` are all it sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from t2t_multimodel.modalities import base

# Rows of the command-token embedding: T2T's 32 target spaces (the ids are
# `t2t_multimodel.data.features.SpaceID`).
NUM_SPACE_IDS = 32


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class MultiModel(keras.Model):
    """One model for every task: modality nets plus a shared body.

    Args:
      modalities: modality nets keyed by name (`ModalitySpec.name`).
      encoder: `call(x, *, training, padding_mask) -> [B, L, d]`.
      decoder: `call(x, encoded, *, training, source_mask, target_mask)`,
        with `initial_state(encoded, source_mask, max_length)` and
        `step(x_t, state, index)` for cached decoding.
      mixer: the I/O mixer `call(encoded, shifted_targets, *, training,
        source_mask, target_mask)` with the same state API, or None.
      hidden_dim: the body width d; None reads `encoder.hidden_dim`.
      num_target_spaces: rows of the command-token embedding (32, T2T).
      label_smoothing: the default of `compute_loss` (0.1 as released).
      **kwargs: `keras.Model` arguments (`name`, ...).

    `call(features, *, input_modality, target_modality, training=None)`
    takes the model features of DESIGN.md and returns `{"logits": ...}`:
    `[B, T, V]` for text targets, `[B, num_classes]` for class labels.
    """

    def __init__(
        self,
        modalities: Mapping[str, base.Modality],
        encoder: keras.layers.Layer,
        decoder: keras.layers.Layer,
        mixer: keras.layers.Layer | None = None,
        *,
        hidden_dim: int | None = None,
        num_target_spaces: int = NUM_SPACE_IDS,
        label_smoothing: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.modalities = dict(modalities)
        self.encoder = encoder
        self.decoder = decoder
        self.mixer = mixer
        self.hidden_dim = int(hidden_dim or encoder.hidden_dim)
        self.num_target_spaces = num_target_spaces
        self.label_smoothing = label_smoothing
        # The command token: not scaled by sqrt(d), as in T2T.
        self.target_space_embedding = keras.layers.Embedding(
            num_target_spaces,
            self.hidden_dim,
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=self.hidden_dim**-0.5
            ),
            name="target_space_embedding",
        )
        self.build(None)

    def build(self, input_shape: tuple | None = None) -> None:
        # Every weight exists before any data is seen (checkpoint restore).
        shape = (None, None, self.hidden_dim)
        for modality in self.modalities.values():
            modality.ensure_built()
        for component in (self.encoder, self.mixer, self.decoder):
            if component is not None and not component.built:
                component.build(shape)
        self.target_space_embedding.build((None,))
        self.built = True

    def encode(
        self,
        features: Mapping[str, Any],
        *,
        input_modality: str,
        training=False,
    ) -> dict[str, Any]:
        """Runs the input modality and the encoder.

        Returns:
          `{"encoded": [B, L, d], "mask": bool [B, L] or None,
          "spatial_shape": (H', W') or None}`.
        """
        bottom = self.modalities[input_modality].bottom(
            features["inputs"],
            training=training,
            padding_mask=features.get("inputs_mask"),
        )
        encoded = self.encoder(
            bottom["hidden"], training=training, padding_mask=bottom["mask"]
        )
        return {
            "encoded": encoded,
            "mask": bottom["mask"],
            "spatial_shape": bottom["spatial_shape"],
        }

    def _command_token(self, target_space_id: Any, like: Any) -> Any:
        """The command-token embedding broadcast to `like` `[B, 1, d]`."""
        token = self.target_space_embedding(ops.cast(target_space_id, "int32"))
        token = ops.reshape(token, (-1, 1, self.hidden_dim))  # [B or 1, 1, d]
        return ops.broadcast_to(ops.cast(token, like.dtype), ops.shape(like))

    def call(
        self,
        features: Mapping[str, Any],
        *,
        input_modality: str,
        target_modality: str,
        training: bool | None = None,
    ) -> dict[str, Any]:
        enc = self.encode(
            features, input_modality=input_modality, training=training
        )
        target = self.modalities[target_modality]
        if target.skips_decoder:
            logits = target.top(
                enc["encoded"],
                training=training,
                spatial_shape=enc["spatial_shape"],
                padding_mask=enc["mask"],
            )
            return {"logits": logits}
        targets = features["targets"]
        embedded = target.targets_bottom(targets, training=training)  # [B,T,d]
        command = self._command_token(
            features["target_space_id"], embedded[:, :1]
        )
        # Shift right: [command, y_0, ..., y_{T-2}].
        shifted = ops.concatenate([command, embedded[:, :-1]], axis=1)
        target_mask = features.get("targets_mask")
        if target_mask is None:
            target_mask = targets != 0  # PAD_ID
        x = shifted
        if self.mixer is not None:
            x = self.mixer(
                enc["encoded"],
                shifted,
                training=training,
                source_mask=enc["mask"],
                target_mask=target_mask,
            )
        y = self.decoder(
            x,
            enc["encoded"],
            training=training,
            source_mask=enc["mask"],
            target_mask=target_mask,
        )
        return {"logits": target.top(y, training=training)}

    def compute_loss(
        self,
        features: Mapping[str, Any],
        outputs: Mapping[str, Any],
        *,
        target_modality: str,
        label_smoothing: float | None = None,
    ) -> dict[str, Any]:
        """The target modality's loss plus the layer losses (MoE balancing).

        Call it right after `call` (same trace): `self.losses` holds the
        auxiliary losses of the last call.

        Returns:
          `{"loss": loss_sum / max(1, weight_sum) + extra_loss, "loss_sum",
          "weight_sum", "extra_loss"}`.
        """
        if label_smoothing is None:
            label_smoothing = self.label_smoothing
        target = self.modalities[target_modality]
        targets = features["targets"]
        weights = target.target_weights(targets, features.get("targets_mask"))
        loss_sum, weight_sum = target.loss(
            outputs["logits"], targets, weights, label_smoothing=label_smoothing
        )
        extra = ops.zeros((), "float32")
        for loss in self.losses:
            extra = extra + ops.cast(loss, "float32")
        loss = loss_sum / ops.maximum(weight_sum, 1.0) + extra
        return {
            "loss": loss,
            "loss_sum": loss_sum,
            "weight_sum": weight_sum,
            "extra_loss": extra,
        }

    def initial_decode_state(
        self, encoded: Mapping[str, Any], batch_size: Any, max_length: int
    ) -> dict[str, Any]:
        """The cached decoding state for up to `max_length` output tokens.

        Args:
          encoded: what `encode` returned.
          batch_size: B (unused beyond the encoded batch; kept for the API).
          max_length: the number of decoding steps the caches hold.
        """
        state = {
            "decoder": self.decoder.initial_state(
                encoded["encoded"], encoded["mask"], max_length
            )
        }
        if self.mixer is not None:
            state["mixer"] = self.mixer.initial_state(
                encoded["encoded"], encoded["mask"], max_length
            )
        return state

    def decode_step(
        self,
        token_ids: Any,
        index: Any,
        state: Mapping[str, Any],
        *,
        target_space_id: Any,
        target_modality: str,
    ) -> tuple[Any, dict[str, Any]]:
        """Logits of output position `index` given the previous token.

        Args:
          token_ids: int `[B]`, the token at `index - 1` (ignored at index 0,
            where the command token is the input).
          index: scalar int, the output position.
          state: from `initial_decode_state` or the previous step.
          target_space_id: int `[B]` or scalar, the command token.
          target_modality: the key of the target modality.

        Returns:
          `(logits [B, V], new_state)`; inference mode.
        """
        target = self.modalities[target_modality]
        embedded = target.targets_bottom(ops.expand_dims(token_ids, 1))
        command = self._command_token(target_space_id, embedded)
        x = ops.where(ops.equal(index, 0), command, embedded)  # [B, 1, d]
        new_state = dict(state)
        if self.mixer is not None:
            x, new_state["mixer"] = self.mixer.step(x, state["mixer"], index)
        y, new_state["decoder"] = self.decoder.step(x, state["decoder"], index)
        return target.top(y)[:, 0], new_state

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            # Keras 3 keeps lists and dicts of layers (the modalities, the
            # blocks) in its own tracked collections, which
            # tf.train.Checkpoint does not follow: without this, a
            # checkpoint holds only the weights of direct layer attributes.
            # Every weight, by its (config-determined) index in `weights`;
            # a variable reachable twice is still saved once.
            # The wrapper must be the same object on every call (the
            # checkpoint graph is keyed by identity); it bypasses Keras's
            # attribute tracking.
            if "_checkpoint_weights" not in self.__dict__:
                import tensorflow as tf  # The checkpoint format is TF's.

                self.__dict__["_checkpoint_weights"] = (
                    tf.__internal__.tracking.wrap(list(self.weights))
                )
            children["all_weights"] = self.__dict__["_checkpoint_weights"]
        return children

    def get_config(self) -> dict[str, Any]:
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "modalities": {k: serialize(m) for k, m in self.modalities.items()},
            "encoder": serialize(self.encoder),
            "decoder": serialize(self.decoder),
            "mixer": None if self.mixer is None else serialize(self.mixer),
            "hidden_dim": self.hidden_dim,
            "num_target_spaces": self.num_target_spaces,
            "label_smoothing": self.label_smoothing,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultiModel:
        deserialize = keras.saving.deserialize_keras_object
        config = dict(config)
        config["modalities"] = {
            k: deserialize(m) for k, m in config["modalities"].items()
        }
        for key in ("encoder", "decoder", "mixer"):
            if config.get(key) is not None:
                config[key] = deserialize(config[key])
        return cls(**config)
