"""Import of original Tensor2Tensor v1.9 MultiModel weights.

T2T v1.9.0 was the last release with a MultiModel; its checkpoints are TF1
name-based checkpoints (`multi_model/enc_layer_0/moe/parallel_3/w_0`, ...).
This module reads such a checkpoint (a TF1 prefix, or a reference `.npz`
holding `var/<T2T name>` arrays as in the parity dumps), infers the model
sizes from the variable shapes, builds the matching `multimodel_t2t_v19`
model (`models/t2t_v19.py` body, three-matrix symbol modality, T2T's 3x3
image projection, mean + dense class-label top) and maps every T2T variable
onto its Keras weight (the name roles are in the parity README, section 7).
Anything that does not map (a missing variable, an extra one or a shape that
differs) fails with the complete list. `save_model` writes the trainer's
checkpoint format (`model.ckpt-<step>` plus `model_config.json`) into an
empty `model_dir` only, unless told to overwrite (`check_model_dir`): a
training run's `model_dir` would otherwise get another `model_config.json`
and checkpoint pointer, orphaning its checkpoints. A checkpoint or `.npz`
that is missing or cannot be read (truncated, not a zip, a bad CRC) fails
with `T2TFileError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2t_multimodel import atomic_write, errors
from t2t_multimodel.modalities import class_label, image, specs, symbol
from t2t_multimodel.models import build, multimodel, t2t_v19
from t2t_multimodel.training import checkpoints

_log = logging.getLogger(__name__)

SCOPE = "multi_model"
# The files of a trainer's run that `save_model(overwrite=True)` replaces.
_RUN_FILES = re.compile(
    r"^(model\.ckpt-\d+.*|checkpoint|model_config\.json|problems\.json"
    r"|operative_config\.gin|eval_results\.json|vocab\..*)$"
)
# Optimizer slots and bookkeeping variables a T2T checkpoint also holds.
_IGNORED = re.compile(
    r"(^|/)(global_step|beta[12]_power(_\d+)?|losses_avg)($|/)"
    r"|/(Lazy)?Adam(_\d+)?$|/Momentum$|/Adafactor\w*$"
)


class T2TImportError(ValueError):
    """The checkpoint does not match the model; lists every offending name."""

    def __init__(
        self,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        mismatched: Sequence[str] = (),
    ) -> None:
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        lines = ["the T2T checkpoint does not match the model:"]
        for title, names in (
            ("missing from the checkpoint", self.missing),
            ("unmapped (extra) checkpoint variables", self.unexpected),
            ("shape mismatches (checkpoint vs model)", self.mismatched),
        ):
            if names:
                lines.append(f"  {title} ({len(names)}):")
                lines.extend(f"    {name}" for name in names)
        super().__init__("\n".join(lines))


class T2TFileError(errors.UserError, ValueError):
    """A T2T checkpoint or dump that is missing or cannot be read."""


@dataclasses.dataclass(frozen=True)
class T2TV19Sizes:
    """The sizes of a T2T v1.9 MultiModel, as read from its variables.

    Attributes:
      hidden_dim: d.
      filter_size: encoder conv and expert width.
      num_encoder_layers: encoder layers.
      num_experts: experts per MoE.
      kernel_size: the first two encoder convs' kernel.
      large_kernel_size: the last two encoder convs' kernel.
      num_decoder_layers: decoder layers (0: class-label model).
      moe_layers: decoder layers with an MoE feed-forward.
      moe_hidden_size: decoder expert width (None without decoder MoE).
      decoder_filter_size: dense decoder FFN width (None without one).
      num_target_spaces: rows of the target-space embedding.
      vocab_size: symbol modality vocabulary (None: no symbol modality).
      num_channels: image channels (None: no image input).
      num_classes: class-label classes (None: no class-label top).
    """

    hidden_dim: int
    filter_size: int
    num_encoder_layers: int
    num_experts: int
    kernel_size: int = 3
    large_kernel_size: int = 15
    num_decoder_layers: int = 0
    moe_layers: tuple[int, ...] = ()
    moe_hidden_size: int | None = None
    decoder_filter_size: int | None = None
    num_target_spaces: int = multimodel.NUM_SPACE_IDS
    vocab_size: int | None = None
    num_channels: int | None = None
    num_classes: int | None = None


def load_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an `.npz` file, read (and CRC-checked) now.

    Raises:
      T2TFileError: the file is missing or no readable `.npz` archive; the
        message names it and what is wrong.
    """
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise T2TFileError(
            f"{path} {what}; pass the .npz file of a T2T reference dump (or "
            "the prefix of a TF1 checkpoint)."
        )
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise zipfile.BadZipFile("no zip archive: wrong header")
        with np.load(path, allow_pickle=False) as dump:
            return {k: np.asarray(dump[k]) for k in dump.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as e:
        raise T2TFileError(
            f"{path} is not a readable .npz archive ({type(e).__name__}: "
            f"{e}); it is truncated, corrupt or of another format. Copy or "
            "write it again."
        ) from None


def read_t2t_variables(path: str, *, scope: str = SCOPE) -> dict:
    """Reads the model variables of a T2T checkpoint or reference dump.

    Args:
      path: a TF1 checkpoint prefix (or a directory holding one), or an
        `.npz` with `var/<name>` arrays.
      scope: the model's variable scope (T2T: `multi_model`).

    Returns:
      `{name without "<scope>/": np.ndarray}`; optimizer slots, the global
      step and other bookkeeping variables are left out.

    Raises:
      T2TFileError: the file is missing or unreadable, or holds no variable
        of `scope`.
    """
    if path.endswith(".npz"):
        raw = {
            k[len("var/") :]: v
            for k, v in load_npz(path).items()
            if k.startswith("var/")
        }
    else:
        if os.path.isdir(path):
            path = tf.train.latest_checkpoint(path) or path
        try:
            # tf.train here: the reader of TF1 name-based checkpoints.
            reader = tf.train.load_checkpoint(path)
            raw = {
                name: reader.get_tensor(name)
                for name in reader.get_variable_to_shape_map()
            }
        except (tf.errors.OpError, ValueError) as e:
            message = errors.condense_message(getattr(e, "message", str(e)))
            raise T2TFileError(
                f"cannot read the T2T checkpoint {path} ({message}). Pass a "
                "TF1 checkpoint prefix (PREFIX.index and PREFIX.data-* must "
                "exist), its directory, or a .npz dump."
            ) from None
    prefix = scope + "/"
    found = {
        name[len(prefix) :]: np.asarray(value)
        for name, value in raw.items()
        if name.startswith(prefix) and not _IGNORED.search(name)
    }
    if not found:
        raise T2TFileError(
            f"no variable under {prefix!r} in {path}: not a T2T MultiModel "
            "checkpoint (or of another variable scope)."
        )
    return merge_embedding_shards(found)


def merge_embedding_shards(variables: Mapping[str, np.ndarray]) -> dict:
    """Joins T2T's vocabulary shards `weights_0..n-1` into one `weights_0`.

    T2T split each symbol-modality matrix into `symbol_modality_num_shards`
    row blocks (16 in 2017, 1 in v1.9's `multimodel_base`) and concatenated
    them along the vocabulary axis; this does the same, in shard order.
    """
    groups: dict[str, dict[int, np.ndarray]] = {}
    merged = {}
    for name, value in variables.items():
        match = re.fullmatch(
            r"(symbol_modality_[^/]+/[^/]+)/weights_(\d+)", name
        )
        if match:
            groups.setdefault(match.group(1), {})[int(match.group(2))] = value
        else:
            merged[name] = value
    for scope, shards in groups.items():
        if sorted(shards) != list(range(len(shards))):
            # Leave gaps unmerged so the importer lists the odd names.
            merged.update(
                {f"{scope}/weights_{i}": v for i, v in shards.items()}
            )
            continue
        merged[f"{scope}/weights_0"] = np.concatenate(
            [shards[i] for i in range(len(shards))], axis=0
        )
    return merged


def _indices(names: Sequence[str], pattern: str) -> list[int]:
    found = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    return sorted(found)


def _first_shape(variables: Mapping[str, Any], pattern: str) -> tuple | None:
    for name in sorted(variables):
        if re.fullmatch(pattern, name):
            return tuple(variables[name].shape)
    return None


def infer_sizes(variables: Mapping[str, Any]) -> T2TV19Sizes:
    """Infers the model sizes from T2T variable names and shapes.

    Args:
      variables: `{T2T name (after "multi_model/"): array or shape holder}`.

    Returns:
      The sizes. Nothing is assumed about the seed or the problem: every
      size comes from a shape or from the count of numbered scopes.

    Raises:
      ValueError: if a size cannot be found (the message names the
        variables it looked for).
    """
    names = sorted(variables)

    def need(pattern: str, what: str) -> tuple:
        shape = _first_shape(variables, pattern)
        if shape is None:
            raise ValueError(f"cannot infer {what}: no variable {pattern!r}")
        return shape

    enc = r"enc_layer_\d+/conv_res_step/"
    conv1 = need(enc + r"residual1/conv_block_0_single/pointwise_kernel", "d")
    hidden_dim, filter_size = conv1[2], conv1[3]
    kernel = need(enc + r"residual1/conv_block_0_single/depthwise_kernel", "k")
    large = need(enc + r"residual2/conv_block_0_single/depthwise_kernel", "k")
    experts = _indices(names, r"enc_layer_\d+/moe/parallel_(\d+)/")
    dec_layers = _indices(names, r"dec_layer_(\d+)/")
    moe_layers = tuple(_indices(names, r"dec_layer_(\d+)/ffn/moe/"))
    moe_w0 = _first_shape(variables, r"dec_layer_\d+/ffn/moe/parallel_0/w_0")
    dense = _first_shape(
        variables, r"dec_layer_\d+/ffn/conv_hidden_relu/conv1_single/kernel"
    )
    spaces = _first_shape(variables, r"target_space_embedding/kernel")
    vocab = _first_shape(variables, r"symbol_modality_\d+_\d+/input_emb/.*")
    channels = _first_shape(variables, r"conv_block/conv_block_0_single/kernel")
    classes = _first_shape(variables, r"class_label_modality_.*/dense/bias")
    enc_layers = _indices(names, r"enc_layer_(\d+)/")
    return T2TV19Sizes(
        hidden_dim=hidden_dim,
        filter_size=filter_size,
        num_encoder_layers=enc_layers[-1] + 1,
        num_experts=experts[-1] + 1 if experts else 0,
        kernel_size=kernel[0],
        large_kernel_size=large[0],
        num_decoder_layers=dec_layers[-1] + 1 if dec_layers else 0,
        moe_layers=moe_layers,
        moe_hidden_size=moe_w0[1] if moe_w0 else None,
        decoder_filter_size=dense[-1] if dense else None,
        num_target_spaces=spaces[0] if spaces else multimodel.NUM_SPACE_IDS,
        vocab_size=vocab[0] if vocab else None,
        num_channels=channels[2] if channels else None,
        num_classes=classes[0] if classes else None,
    )


def class_label_name(num_classes: int) -> str:
    """The model's key of the class-label modality (problems' convention)."""
    return f"class_label_{num_classes}"


def build_t2t_v19_model(
    sizes: T2TV19Sizes,
    *,
    encoder_kwargs: Mapping[str, Any] | None = None,
    decoder_kwargs: Mapping[str, Any] | None = None,
    label_smoothing: float = 0.1,
) -> multimodel.MultiModel:
    """Builds the `multimodel_t2t_v19` model of the given sizes.

    Modalities are keyed `"symbol"`, `"image"` and `"class_label_<n>"` (the
    names problems use). A class-label-only model still gets a decoder (the
    MultiModel needs one) with `num_encoder_layers` dense layers; it is
    unused by class-label problems and not imported.

    Args:
      sizes: from `infer_sizes`.
      encoder_kwargs: other `T2TV19Encoder` arguments (dropout, top_k, ...).
      decoder_kwargs: other `T2TV19Decoder` arguments (num_heads, ...).
      label_smoothing: the model's default label smoothing.
    """
    d = sizes.hidden_dim
    modality_specs = []
    if sizes.vocab_size:
        modality_specs.append(
            specs.ModalitySpec(
                "symbol",
                symbol.SymbolModality,
                {
                    "vocab_size": sizes.vocab_size,
                    "shared_embeddings": False,
                    "shared_softmax": False,
                },
            )
        )
    if sizes.num_channels:
        modality_specs.append(
            specs.ModalitySpec(
                "image",
                image.ImageModality,
                {
                    "entry_flow": False,
                    "per_image_standardization": False,
                    "num_channels": sizes.num_channels,
                },
            )
        )
    if sizes.num_classes:
        modality_specs.append(
            specs.ModalitySpec(
                class_label_name(sizes.num_classes),
                class_label.ClassLabelModality,
                {"num_classes": sizes.num_classes, "exit_flow": False},
            )
        )
    encoder = t2t_v19.T2TV19Encoder(
        **{
            **dict(encoder_kwargs or {}),
            "hidden_dim": d,
            "filter_size": sizes.filter_size,
            "num_layers": sizes.num_encoder_layers,
            "num_experts": sizes.num_experts,
            "kernel_size": sizes.kernel_size,
            "large_kernel_size": sizes.large_kernel_size,
        }
    )
    decoder_sizes = {
        "hidden_dim": d,
        "filter_size": sizes.decoder_filter_size or sizes.filter_size,
        "num_layers": sizes.num_decoder_layers or sizes.num_encoder_layers,
        "moe_layers": sizes.moe_layers,
        "num_experts": sizes.num_experts,
    }
    if sizes.moe_hidden_size:
        decoder_sizes["moe_hidden_size"] = sizes.moe_hidden_size
    decoder = t2t_v19.T2TV19Decoder(
        **{**dict(decoder_kwargs or {}), **decoder_sizes}
    )
    model = build.build_model(
        modality_specs=modality_specs,
        hidden_dim=d,
        encoder=encoder,
        decoder=decoder,
        label_smoothing=label_smoothing,
    )
    if model.num_target_spaces != sizes.num_target_spaces:
        raise ValueError(
            f"{sizes.num_target_spaces} target spaces; the model has "
            f"{model.num_target_spaces}"
        )
    return model


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where one T2T variable goes: a Keras weight, or one expert of it."""

    variable: Any
    expert: int | None = None  # the row of a stacked [E, ...] kernel
    conv_1x1: bool = False  # T2T holds the Dense kernel as [1, 1, in, out]

    def t2t_shape(self) -> tuple:
        shape = tuple(self.variable.shape)
        if self.expert is not None:
            return shape[1:]
        return (1, 1, *shape) if self.conv_1x1 else shape


def _norm(layer: Any, prefix: str) -> dict:
    return {
        f"{prefix}/layer_norm_scale": _Slot(layer.gamma),
        f"{prefix}/layer_norm_bias": _Slot(layer.beta),
    }


def _moe(layer: Any, prefix: str) -> dict:
    gating = f"{prefix}/noisy_top_k_gating"
    slots = {f"{gating}/w_gate": _Slot(layer.w_gate)}
    if layer.w_noise is not None:
        slots[f"{gating}/w_noise"] = _Slot(layer.w_noise)
    for e in range(layer.num_experts):
        slots[f"{prefix}/parallel_{e}/w_0"] = _Slot(layer.w_0, e)
        slots[f"{prefix}/parallel_{e}/w_1"] = _Slot(layer.w_1, e)
    return slots


def _encoder_slots(encoder: t2t_v19.T2TV19Encoder) -> dict:
    slots = {}
    for i in range(encoder.num_layers):
        scope = f"enc_layer_{i}"
        for j, step in enumerate(encoder.conv_steps[i]):
            block = f"{scope}/conv_res_step/residual{j // 2 + 1}"
            conv = f"{block}/conv_block_{j % 2}_single"
            slots[f"{conv}/depthwise_kernel"] = _Slot(
                step.conv.depthwise_kernel
            )
            slots[f"{conv}/pointwise_kernel"] = _Slot(
                step.conv.pointwise_kernel
            )
            slots.update(
                _norm(step.layer_norm, f"{block}/conv_block_norm_{j % 2}")
            )
        slots.update(_moe(encoder.moes[i], f"{scope}/moe"))
        slots.update(_norm(encoder.layer_norms[i], f"{scope}/layer_norm"))
    return slots


def _decoder_slots(decoder: t2t_v19.T2TV19Decoder) -> dict:
    slots = {}
    for j in range(decoder.num_layers):
        scope = f"dec_layer_{j}"
        for name, mha in (
            ("decoder_self_attention", decoder.self_attentions[j]),
            ("encdec_attention", decoder.encdec_attentions[j]),
        ):
            for part in ("q", "k", "v", "output_transform"):
                slots[f"{scope}/attention/{name}/{part}/kernel"] = _Slot(
                    getattr(mha, part).kernel
                )
        slots.update(
            _norm(decoder.attention_norms[j], f"{scope}/attention/layer_norm")
        )
        if j in decoder.moe_layers:
            slots.update(_moe(decoder.ffns[j], f"{scope}/ffn/moe"))
        else:
            relu = f"{scope}/ffn/conv_hidden_relu"
            for k, dense in enumerate(decoder.ffns[j]):
                # T2T's 1x1 conv kernel [1, 1, in, out] is a Dense [in, out].
                slots[f"{relu}/conv{k + 1}_single/kernel"] = _Slot(
                    dense.kernel, conv_1x1=True
                )
                slots[f"{relu}/conv{k + 1}_single/bias"] = _Slot(dense.bias)
        slots.update(_norm(decoder.ffn_norms[j], f"{scope}/ffn/layer_norm"))
    return slots


def t2t_weight_map(model: multimodel.MultiModel, sizes: T2TV19Sizes) -> dict:
    """Maps the T2T names of the parts `sizes` has onto the model's weights.

    Args:
      model: a `multimodel_t2t_v19` model (e.g. from `build_t2t_v19_model`).
      sizes: which parts the checkpoint holds (a class-label checkpoint has
        no decoder, symbol modality or target-space embedding).

    Returns:
      `{T2T name (after "multi_model/"): _Slot}`.

    Raises:
      ValueError: if the model lacks a part the checkpoint has.
    """
    if not isinstance(model.encoder, t2t_v19.T2TV19Encoder):
        raise ValueError("the model's encoder is not a T2TV19Encoder")
    d = sizes.hidden_dim
    slots = _encoder_slots(model.encoder)
    mods = model.modalities
    if sizes.vocab_size:
        sym = mods["symbol"]
        scope = f"symbol_modality_{sym.vocab_size}_{d}"
        for part in ("input_emb", "target_emb", "softmax"):
            slots[f"{scope}/{part}/weights_0"] = _Slot(getattr(sym, part))
    if sizes.num_decoder_layers:
        if not isinstance(model.decoder, t2t_v19.T2TV19Decoder):
            raise ValueError("the model's decoder is not a T2TV19Decoder")
        slots.update(_decoder_slots(model.decoder))
        slots["target_space_embedding/kernel"] = _Slot(
            model.target_space_embedding.embeddings
        )
    if sizes.num_channels:
        img = mods["image"]
        slots["conv_block/conv_block_0_single/kernel"] = _Slot(
            img.project_to_hidden.kernel
        )
        slots.update(_norm(img.project_norm, "conv_block/conv_block_norm_0"))
    if sizes.num_classes:
        top = mods[class_label_name(sizes.num_classes)]
        scope = f"class_label_modality_{top.num_classes}_{d}"
        scope = f"{scope}/{scope}/dense"  # T2T nests the scope twice.
        slots[f"{scope}/kernel"] = _Slot(top.dense.kernel)
        slots[f"{scope}/bias"] = _Slot(top.dense.bias)
    return slots


def assign_t2t_weights(
    model: multimodel.MultiModel, variables: Mapping[str, np.ndarray]
) -> T2TV19Sizes:
    """Copies T2T variables into `model`, all or nothing.

    Args:
      model: a `multimodel_t2t_v19` model with the checkpoint's sizes.
      variables: from `read_t2t_variables`.

    Returns:
      The sizes inferred from `variables`.

    Raises:
      T2TImportError: listing every missing, extra or mis-shaped variable
        (nothing is assigned then).
    """
    variables = merge_embedding_shards(variables)
    sizes = infer_sizes(variables)
    slots = t2t_weight_map(model, sizes)
    missing = [n for n in slots if n not in variables]
    unexpected = [n for n in variables if n not in slots]
    mismatched = []
    for name, slot in slots.items():
        if name in variables:
            shape = tuple(np.shape(variables[name]))
            if shape != slot.t2t_shape():
                mismatched.append(f"{name}: {shape} vs {slot.t2t_shape()}")
    if missing or unexpected or mismatched:
        raise T2TImportError(missing, unexpected, mismatched)
    values: dict[int, tuple[Any, np.ndarray]] = {}
    for name, slot in slots.items():
        var = slot.variable
        if id(var) not in values:
            values[id(var)] = (var, np.array(var.numpy()))
        target = values[id(var)][1]
        if slot.expert is None:
            target[...] = np.reshape(variables[name], target.shape)
        else:
            target[slot.expert] = variables[name]
    for var, value in values.values():
        var.assign(value)
    return sizes


def import_t2t_checkpoint(
    checkpoint: str | Mapping[str, np.ndarray],
    *,
    model: multimodel.MultiModel | None = None,
    encoder_kwargs: Mapping[str, Any] | None = None,
    decoder_kwargs: Mapping[str, Any] | None = None,
) -> multimodel.MultiModel:
    """Reads a T2T v1.9 MultiModel checkpoint into a Keras model.

    Args:
      checkpoint: a TF1 checkpoint prefix (or its directory), a reference
        `.npz`, or the variables `read_t2t_variables` returned.
      model: the model to fill; None builds one with the inferred sizes.
      encoder_kwargs: `T2TV19Encoder` arguments that shapes cannot tell
        (used when `model` is None).
      decoder_kwargs: `T2TV19Decoder` arguments (num_heads, top_k, ...).

    Returns:
      The model holding the checkpoint's weights.

    Raises:
      T2TImportError: if a variable does not map (see `assign_t2t_weights`).
    """
    if isinstance(checkpoint, str):
        variables = read_t2t_variables(checkpoint)
    else:
        variables = merge_embedding_shards(checkpoint)
    if model is None:
        model = build_t2t_v19_model(
            infer_sizes(variables),
            encoder_kwargs=encoder_kwargs,
            decoder_kwargs=decoder_kwargs,
        )
    assign_t2t_weights(model, variables)
    return model


def check_model_dir(model_dir: str, *, overwrite: bool = False) -> None:
    """Fails unless `model_dir` is absent or empty, or `overwrite` is set.

    Raises:
      FileExistsError: `model_dir` holds files (a user error: one line).
    """
    names = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise FileExistsError(f"{model_dir} is a file, not a directory.")
    if names and not overwrite:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise FileExistsError(
            f"{model_dir} is not empty ({shown}): importing would replace "
            "its model_config.json and checkpoint pointer and orphan the "
            "checkpoints of the run in it. Choose a new or empty "
            "--model_dir, or pass --overwrite to replace that run's "
            "checkpoints and run files."
        )


def _remove_run_files(model_dir: str) -> list[str]:
    removed = []
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if _RUN_FILES.match(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    if removed:
        _log.warning("removed from %s: %s", model_dir, ", ".join(removed))
    return removed


def save_model(
    model: keras.Model,
    model_dir: str,
    *,
    step: int = 0,
    overwrite: bool = False,
) -> str:
    """Writes `model` to `model_dir`; returns the checkpoint path.

    `model_dir/model.ckpt-<step>` holds the weights by Keras path
    (`checkpoints.weights_by_path`, the trainer's layout) and the step, and
    `model_dir/model_config.json` the Keras config (the file names of the
    trainer's run directories).

    Args:
      model: the model to save.
      model_dir: the directory (created); must be empty unless `overwrite`.
      step: the checkpoint's step.
      overwrite: first remove a previous run's checkpoints and run files
        (`model.ckpt-*`, `checkpoint`, `model_config.json`, `problems.json`,
        `operative_config.gin`, `eval_results.json`, vocabulary copies);
        other files stay.

    Raises:
      FileExistsError: `model_dir` is not empty and `overwrite` is False.
    """
    check_model_dir(model_dir, overwrite=overwrite)
    os.makedirs(model_dir, exist_ok=True)
    if overwrite:
        _remove_run_files(model_dir)
    atomic_write.write_json(
        os.path.join(model_dir, "model_config.json"),
        keras.saving.serialize_keras_object(model),
        sort_keys=False,
    )
    step_var = tf.Variable(step, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(
        model=checkpoints.weights_by_path(model), step=step_var
    )
    manager = tf.train.CheckpointManager(
        checkpoint, model_dir, max_to_keep=None, checkpoint_name="model.ckpt"
    )
    return manager.save(checkpoint_number=step)


def load_model(model_dir: str) -> multimodel.MultiModel:
    """Rebuilds a model from `model_config.json` and its newest checkpoint."""
    with open(os.path.join(model_dir, "model_config.json")) as f:
        model = keras.saving.deserialize_keras_object(json.load(f))
    path = tf.train.latest_checkpoint(model_dir)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {model_dir}")
    status = tf.train.Checkpoint(
        model=checkpoints.weights_by_path(model)
    ).restore(path)
    status.expect_partial().assert_existing_objects_matched()
    return model
