"""Serving signatures of a SavedModel, read from its `saved_model.pb`.

A `SignatureSpec` lists a signature's named inputs and outputs with their
dtypes and shapes (`TensorInfo`); the REST layer validates requests against
it and the model metadata endpoint returns the `SignatureDef` protos as JSON,
in TF Serving's layout. The exporter (SPEC.md section 1) writes one signature
per problem, taking raw inputs (`inputs`, `image_bytes` or `audio_bytes`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

SERVE_TAG = "serve"


class NoServeGraphError(ValueError):
    """A `saved_model.pb` without a meta graph tagged `serve`."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One named input or output of a signature.

    Attributes:
        dtype: the TensorFlow dtype.
        shape: the dims, None where unknown; None for an unknown rank.
    """

    dtype: tf.DType
    shape: tuple[int | None, ...] | None

    @property
    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype of values of this tensor (object for strings)."""
        return np.dtype(self.dtype.as_numpy_dtype)


@dataclasses.dataclass(frozen=True)
class SignatureSpec:
    """A serving signature: name, inputs and outputs by name."""

    name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]


def _tensor_info(proto: meta_graph_pb2.TensorInfo) -> TensorInfo:
    shape = proto.tensor_shape
    dims = None
    if not shape.unknown_rank:
        dims = tuple(None if d.size < 0 else int(d.size) for d in shape.dim)
    return TensorInfo(tf.dtypes.as_dtype(proto.dtype), dims)


def _is_servable(name: str) -> bool:
    # `__saved_model_init_op` (and any other dunder entry) is TF's own
    # bookkeeping, not a signature a client can call.
    return not name.startswith("__")


def read_signature_defs(
    export_dir: str,
) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The servable `SignatureDef`s of the `serve` graph in `export_dir`.

    Raises:
        FileNotFoundError: no `saved_model.pb` in `export_dir`.
        google.protobuf.message.DecodeError: the file is not a SavedModel.
        NoServeGraphError: the SavedModel has no `serve` meta graph (an
            empty file parses as such a SavedModel).
    """
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {
                name: signature
                for name, signature in meta_graph.signature_def.items()
                if _is_servable(name)
            }
    raise NoServeGraphError(f"no meta graph tagged {SERVE_TAG!r}")


def signature_spec(
    name: str, signature_def: meta_graph_pb2.SignatureDef
) -> SignatureSpec:
    """The `SignatureSpec` of one `SignatureDef` proto."""
    return SignatureSpec(
        name=name,
        inputs={k: _tensor_info(v) for k, v in signature_def.inputs.items()},
        outputs={k: _tensor_info(v) for k, v in signature_def.outputs.items()},
    )


def signature_def_json(signature_def: meta_graph_pb2.SignatureDef) -> dict:
    """A `SignatureDef` as TF Serving prints it (proto names, defaults)."""
    result: dict[str, Any] = json_format.MessageToDict(
        signature_def,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    return result
