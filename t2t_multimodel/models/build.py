"""`build_model`: a `MultiModel` from modality specs and body components.

The gin model sets (`gin/models/*.gin`) bind the body width and the body
components of this function; the trainer passes the modality specs of the
problems it trains on (`Problem.features[...].modality`). Modality specs with
the same name build one shared instance (the paper shares modality nets by
modality, never by task).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import keras

from t2t_multimodel.modalities import specs as specs_lib
from t2t_multimodel.models import multimodel


def build_model(
    *,
    modality_specs: Mapping[str, specs_lib.ModalitySpec]
    | Iterable[specs_lib.ModalitySpec],
    hidden_dim: int,
    encoder: keras.layers.Layer,
    decoder: keras.layers.Layer,
    mixer: keras.layers.Layer | None = None,
    modality_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    label_smoothing: float = 0.1,
) -> multimodel.MultiModel:
    """Builds the MultiModel.

    Args:
      modality_specs: the specs to build, keyed by name or as an iterable
        (duplicates by name are built once; two different specs under one
        name are an error).
      hidden_dim: the body width d.
      encoder: the encoder layer (width `hidden_dim`).
      decoder: the decoder layer.
      mixer: the I/O mixer, or None (T2T v1.9 body).
      modality_kwargs: extra constructor arguments per modality, keyed by the
        modality class name (`"ClassLabelModality"`, for every class-label
        modality) or by the modality name (`"symbol"`); the name wins.
      label_smoothing: the model's default label smoothing.

    Returns:
      A built `MultiModel`.

    Raises:
      ValueError: if two different specs share a name.
    """
    modality_kwargs = modality_kwargs or {}
    specs = (
        modality_specs.values()
        if isinstance(modality_specs, Mapping)
        else modality_specs
    )
    unique: dict[str, specs_lib.ModalitySpec] = {}
    for spec in specs:
        if spec.name in unique and unique[spec.name] != spec:
            raise ValueError(
                f"two different modality specs named {spec.name!r}: "
                f"{unique[spec.name]} and {spec}"
            )
        unique[spec.name] = spec
    modalities = {
        name: spec.build(
            hidden_dim,
            **{
                **dict(modality_kwargs.get(spec.class_name, {})),
                **dict(modality_kwargs.get(name, {})),
            },
        )
        for name, spec in unique.items()
    }
    return multimodel.MultiModel(
        modalities,
        encoder,
        decoder,
        mixer,
        hidden_dim=hidden_dim,
        label_smoothing=label_smoothing,
    )
