"""Parameter counts of the T2T v1.9 configurations against the original.

The original v1.9 code (multimodel_facts.md section 11) has 28,008,576
trainable parameters in `multimodel_tiny` on a text problem with vocabulary
8192 and 8,860,264 on a 64x64x3 image -> 1000 classes problem; both models
come from the same gin configuration here, with different modalities.
"""

from __future__ import annotations

import gin
import numpy as np
import pytest

from t2t_multimodel.modalities import specs as specs_lib
from t2t_multimodel.models import build

TEXT = specs_lib.ModalitySpec(
    "symbol",
    "t2t_multimodel.modalities.symbol.SymbolModality",
    {"vocab_size": 8192},
)
IMAGE = specs_lib.ModalitySpec(
    "image", "t2t_multimodel.modalities.image.ImageModality"
)
LABELS = specs_lib.ModalitySpec(
    "class_label_1000",
    "t2t_multimodel.modalities.class_label.ClassLabelModality",
    {"num_classes": 1000},
)


def _count(*layers) -> int:
    """Trainable parameters of `layers`, each variable counted once."""
    seen = {}
    for layer in layers:
        for w in layer.trainable_weights:
            seen[id(w)] = int(np.prod(w.shape))
    return sum(seen.values())


def _build(gin_name: str, specs):
    gin.clear_config()
    gin.add_config_file_search_path("t2t_multimodel/configs/models")
    gin.parse_config_file(f"t2t_multimodel/configs/models/{gin_name}")
    try:
        return gin.get_configurable(build.build_model)(modality_specs=specs)
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def tiny_text():
    return _build("multimodel_t2t_v19_tiny.gin", [TEXT])


def test_tiny_text_total(tiny_text):
    assert _count(tiny_text) == 28_008_576


def test_tiny_text_breakdown(tiny_text):
    # The per-component figures of multimodel_facts.md section 11 (d = 128).
    model = tiny_text
    symbol = model.modalities["symbol"]
    assert [int(np.prod(w.shape)) for w in symbol.trainable_weights] == [
        1_048_576
    ] * 3
    assert _count(model.target_space_embedding) == 4_096
    enc = model.encoder
    assert _count(*enc.conv_steps[0]) == 423_680
    assert _count(enc.moes[0]) == 3_939_840
    layer_0 = _count(*enc.conv_steps[0], enc.moes[0], enc.layer_norms[0])
    assert layer_0 == 4_363_776
    assert _count(enc) == 2 * 4_363_776
    dec = model.decoder
    attention = [
        _count(dec.self_attentions[j], dec.encdec_attentions[j])
        + _count(dec.attention_norms[j])
        for j in range(2)
    ]
    assert attention == [131_328, 131_328]
    assert _count(dec.ffns[0], dec.ffn_norms[0]) == 15_736_576
    assert _count(*dec.ffns[1], dec.ffn_norms[1]) == 131_968


def test_tiny_image_to_label():
    model = _build("multimodel_t2t_v19_tiny.gin", [IMAGE, LABELS])
    # What the image -> label path uses: no symbol modality, no decoder and
    # no target-space embedding (T2T never creates them for this problem).
    image = model.modalities["image"]
    labels = model.modalities["class_label_1000"]
    assert _count(image) == 3 * 3 * 3 * 128 + 2 * 128
    assert _count(labels) == 128 * 1000 + 1000
    assert _count(image, labels, model.encoder) == 8_860_264


@pytest.mark.slow
def test_base_sizes():
    # multimodel_base (d 512): 368,465,408 on text, 278,752,744 on images.
    model = _build("multimodel_t2t_v19.gin", [TEXT, IMAGE, LABELS])
    mods = model.modalities
    text = _count(
        mods["symbol"],
        model.encoder,
        model.decoder,
        model.target_space_embedding,
    )
    assert text == 368_465_408
    image = _count(mods["image"], mods["class_label_1000"], model.encoder)
    assert image == 278_752_744
