"""Numerical parity of an imported model with a T2T v1.9 reference dump.

A reference dump (`shared/reference/t2t_v19_parity/*.npz`, format in its
README) holds the weights, inputs, intermediate tensors ("taps"), logits and
losses of one EVAL-mode run of the original T2T v1.9 MultiModel. After
`t2t_import.import_t2t_checkpoint(dump)`, `compare_with_dump` runs the model
in inference mode on the dump's inputs and returns the largest absolute
difference of the logits, the three losses and every tap it can recompute.
Taps are matched by name (`tap/NN_<name>`), never by seed or position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel.layers import gating, moe
from t2t_multimodel.models import multimodel
from t2t_multimodel.t2t_compat import checkpoint_import as t2t_import

# Arrays whose difference decides parity (the 1e-4 criterion).
OUTPUT_KEYS = (
    "out/logits",
    "out/loss_training",
    "out/loss_training_ls0.1",
    "out/loss_extra",
)


def dump_features(dump: Mapping[str, np.ndarray]) -> tuple[dict, str, str]:
    """The model features of a dump and its (input, target) modality keys."""
    inputs = dump["in/inputs"]
    targets = dump["in/targets"]
    batch = inputs.shape[0]
    space = np.full([batch], int(dump["in/target_space_id"]), np.int32)
    if inputs.dtype.kind == "f":  # image [B, H, W, C] -> class label
        num_classes = dump["out/logits"].shape[-1]
        features = {
            "inputs": tf.constant(inputs, tf.float32),
            "targets": tf.constant(targets.reshape(batch), tf.int32),
            "target_space_id": tf.constant(space),
        }
        return features, "image", t2t_import.class_label_name(num_classes)
    ids = inputs.reshape(batch, -1).astype(np.int32)  # [B, L, 1, 1] -> [B, L]
    out = targets.reshape(batch, -1).astype(np.int32)  # [B, T]
    features = {
        "inputs": tf.constant(ids),
        "inputs_mask": tf.constant(ids != 0),
        "targets": tf.constant(out),
        "targets_mask": tf.constant(out != 0),
        "target_space_id": tf.constant(space),
    }
    return features, "symbol", "symbol"


def _moe_taps(layer: moe.SparseMoE, x: Any, prefix: str, scaled: bool):
    """Gates `[N, E]`, load `[E]` and loss of `layer` on its input `x`."""
    rows = tf.reshape(x, [-1, layer.hidden_dim])  # [N, d]
    routing = layer.route(rows, training=False)
    # [N, k] index and gate -> dense [N, E] gate matrix.
    one_hot = tf.one_hot(routing.expert_index, layer.num_experts)
    gates = tf.reduce_sum(one_hot * routing.expert_gate[..., None], axis=1)
    loss = gating.cv_squared(routing.importance) + gating.cv_squared(
        routing.load
    )
    # T2T's encoder taps the loss before `moe_loss_coef`, the decoder after.
    return {
        f"{prefix}_moe_gates": gates,
        f"{prefix}_moe_load": routing.load,
        f"{prefix}_moe_loss": loss * layer.loss_coef if scaled else loss,
    }


def _encoder_taps(model, features, input_modality) -> tuple[dict, Any, Any]:
    bottom = model.modalities[input_modality].bottom(
        features["inputs"],
        training=False,
        padding_mask=features.get("inputs_mask"),
    )
    hidden, mask = bottom["hidden"], bottom["mask"]
    taps = {}
    if input_modality == "image":
        # [B, H W, d] -> [B, H, W, d], the grid before T2T's flatten.
        shape = tf.concat([tf.shape(features["inputs"])[:3], [-1]], 0)
        taps["project_to_hidden"] = tf.reshape(hidden, shape)
    else:
        taps["inputs_bottom"] = hidden
    encoder = model.encoder
    encoded, inner = encoder.forward(hidden, training=False, padding_mask=mask)
    taps["encoder_input_timing"] = inner["input_timing"]
    layer_input = inner["input_timing"]
    for i in range(encoder.num_layers):
        taps[f"enc{i}_conv_res_step"] = inner[f"layer_{i}/conv"]
        taps[f"enc{i}_moe_out"] = inner[f"layer_{i}/moe"]
        taps[f"enc{i}_residual_out"] = inner[f"layer_{i}/output"]
        taps.update(
            _moe_taps(encoder.moes[i], layer_input, f"enc{i}", scaled=False)
        )
        layer_input = inner[f"layer_{i}/output"]
    return taps, encoded, mask


def _decoder_taps(model, features, target_modality, encoded, mask) -> dict:
    target = model.modalities[target_modality]
    embedded = target.targets_bottom(features["targets"], training=False)
    space = model.target_space_embedding(features["target_space_id"][:1])
    # [1, d] -> [B, 1, d]; shift right with the command token in slot 0.
    command = tf.broadcast_to(space[:, None], tf.shape(embedded[:, :1]))
    shifted = tf.concat([command, embedded[:, :-1]], axis=1)
    decoder = model.decoder
    body, inner = decoder.forward(
        shifted, encoded, training=False, source_mask=mask
    )
    taps = {
        "targets_bottom": embedded,
        "target_space_emb": space,
        "decoder_input": inner["input_timing"],
        "body_output": body,
    }
    for j in range(decoder.num_layers):
        attended = inner[f"layer_{j}/attention_output"]
        taps[f"dec{j}_self_attention"] = inner[f"layer_{j}/self_attention"]
        taps[f"dec{j}_encdec_attention"] = inner[f"layer_{j}/encdec_attention"]
        taps[f"dec{j}_attn_residual_out"] = attended
        taps[f"dec{j}_ffn_residual_out"] = inner[f"layer_{j}/output"]
        if j in decoder.moe_layers:
            taps[f"dec{j}_ffn_moe_out"] = inner[f"layer_{j}/ffn"]
            taps.update(
                _moe_taps(decoder.ffns[j], attended, f"dec{j}", scaled=True)
            )
        else:
            taps[f"dec{j}_ffn_out"] = inner[f"layer_{j}/ffn"]
    return taps


def recompute(
    model: multimodel.MultiModel, dump: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The model's values of the dump's outputs and taps, keyed like it.

    Runs in inference mode. Output keys are `OUTPUT_KEYS`; taps are keyed
    `tap/<name>` without the dump's `NN_` call-order prefix.
    """
    features, source, target = dump_features(dump)
    outputs = model(
        features,
        input_modality=source,
        target_modality=target,
        training=False,
    )
    got = {"out/logits": outputs["logits"]}
    for key, smoothing in (
        ("out/loss_training", 0.0),
        ("out/loss_training_ls0.1", 0.1),
    ):
        loss = model.compute_loss(
            features,
            outputs,
            target_modality=target,
            label_smoothing=smoothing,
        )
        got[key] = loss["loss_sum"] / tf.maximum(loss["weight_sum"], 1.0)
        got["out/loss_extra"] = loss["extra_loss"]
    taps, encoded, mask = _encoder_taps(model, features, source)
    if model.modalities[target].skips_decoder:
        taps["body_output"] = encoded
    else:
        taps.update(_decoder_taps(model, features, target, encoded, mask))
    got.update({f"tap/{k}": v for k, v in taps.items()})
    return {k: np.asarray(v) for k, v in got.items()}


def compare_with_dump(
    model: multimodel.MultiModel, dump: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], list[str]]:
    """Largest absolute differences between the model and a dump.

    Args:
      model: the model holding the dump's weights (`import_t2t_checkpoint`).
      dump: the loaded `.npz` (`np.load(path)`).

    Returns:
      `({dump array name: max |model - dump|}, [dump arrays not matched])`
      for the outputs and every tap the model recomputes (the raw input
      taps, e.g. the image bottom, are left unmatched).
    """
    got = recompute(model, dump)
    diffs, unmatched = {}, []
    for name in dump.files if hasattr(dump, "files") else dump:
        if not name.startswith(("out/", "tap/")):
            continue
        key = re.sub(r"^tap/\d+_", "tap/", name)
        if key not in got:
            unmatched.append(name)
            continue
        ref = np.asarray(dump[name], np.float64)
        value = np.asarray(got[key], np.float64).reshape(ref.shape)
        diffs[name] = float(np.max(np.abs(value - ref))) if ref.size else 0.0
    return diffs, unmatched


def max_output_difference(diffs: Mapping[str, float]) -> float:
    """The largest difference over the logits and the losses."""
    return max(diffs[k] for k in OUTPUT_KEYS if k in diffs)
