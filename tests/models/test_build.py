"""Tests of `build_model` (models/build.py) and the gin model sets."""

from __future__ import annotations

import os

import gin
import keras
import pytest

from t2t_multimodel.modalities import specs as modality_specs
from t2t_multimodel.modalities import specs as specs_lib
from t2t_multimodel.models import build, decoder, encoder

GIN_DIR = os.path.join(
    os.path.dirname(__file__), "..", "..", "t2t_multimodel", "configs", "models"
)
SMALL = {"num_experts": 4, "top_k": 2, "kernel_sizes": (3, 3, 5, 5)}


@pytest.fixture
def clean_gin():
    gin.clear_config()
    gin.add_config_file_search_path(GIN_DIR)
    yield
    gin.clear_config()


def _gin_model(gin_file, bindings=(), specs=(modality_specs.SYMBOL,)):
    gin.parse_config_files_and_bindings(
        [os.path.join(GIN_DIR, gin_file)], list(bindings)
    )
    keras.utils.set_random_seed(0)
    return gin.get_configurable(build.build_model)(modality_specs=list(specs))


class TestBuildModel:
    def test_specs_with_one_name_share_one_instance(self):
        model = build.build_model(
            modality_specs=[
                modality_specs.SYMBOL,
                modality_specs.class_label(3),
                modality_specs.SYMBOL,
            ],
            hidden_dim=16,
            encoder=encoder.Encoder(16, num_blocks=1, moe_position=1, **SMALL),
            decoder=decoder.Decoder(
                16, num_blocks=1, moe_position=1, num_heads=4, **SMALL
            ),
            modality_kwargs={
                "ClassLabelModality": {"exit_flow": False},
                "symbol": {"vocab_size": 40, "shared_embeddings": True},
            },
            label_smoothing=0.2,
        )
        assert sorted(model.modalities) == ["class_label_3", "symbol"]
        assert model.modalities["symbol"].vocab_size == 40
        assert model.modalities["symbol"].shared_embeddings
        assert not model.modalities["class_label_3"].exit_flow
        assert model.mixer is None and model.label_smoothing == 0.2

    def test_two_specs_under_one_name_fail(self):
        other = specs_lib.ModalitySpec(
            "symbol",
            "t2t_multimodel.modalities.symbol.SymbolModality",
            {"vocab_size": 10},
        )
        with pytest.raises(ValueError, match="symbol"):
            build.build_model(
                modality_specs=[modality_specs.SYMBOL, other],
                hidden_dim=16,
                encoder=encoder.Encoder(
                    16, num_blocks=1, moe_position=1, **SMALL
                ),
                decoder=decoder.Decoder(
                    16, num_blocks=1, moe_position=1, **SMALL
                ),
            )


class TestGinModelSets:
    def test_tiny_builds_and_counts(self, clean_gin):
        model = _gin_model("multimodel_tiny.gin")
        assert model.hidden_dim == 128
        assert len(model.encoder.conv_blocks) == 2
        assert model.encoder.moe.num_experts == 8
        assert model.encoder.moe.top_k == 2
        assert len(model.mixer.conv_blocks) == 1
        assert len(model.decoder.conv_blocks) == 2
        assert model.decoder.conv_blocks[0].dropout == 0.1

        def trainable(layer):
            return sum(w.numpy().size for w in layer.trainable_weights)

        symbol = 3 * 8192 * 128  # input_emb, target_emb, softmax
        command = 32 * 128
        body = sum(map(trainable, (model.encoder, model.mixer, model.decoder)))
        assert trainable(model) == symbol + command + body
        # The tiny text model (vocabulary 8192): 4,964,096 trainable
        # parameters (plus 2 x 4 MoE statistics scalars).
        assert trainable(model) == 4_964_096
        assert model.count_params() == 4_964_096 + 8

    def test_tiny_builds_every_modality(self, clean_gin):
        specs = (
            modality_specs.SYMBOL,
            modality_specs.IMAGE,
            modality_specs.AUDIO_WAVEFORM,
            modality_specs.AUDIO_SPECTRAL,
            modality_specs.class_label(10),
        )
        model = _gin_model("multimodel_tiny.gin", specs=specs)
        assert sorted(model.modalities) == sorted(s.name for s in specs)
        assert model.modalities["image"].res_blocks[-1].filters == 128

    @pytest.mark.parametrize(
        "gin_file, hidden, experts",
        [
            ("multimodel_base.gin", 512, 60),
            ("multimodel_paper.gin", 1536, 240),
        ],
    )
    def test_paper_structure(self, clean_gin, gin_file, hidden, experts):
        # Built at width 16: the structure, not the size, is checked here;
        # test_param_breakdown.py counts the full-size parameters.
        model = _gin_model(gin_file, ["HIDDEN_DIM = 16", "EXPERT_DIM = 16"])
        assert gin.query_parameter("%NUM_EXPERTS") == experts
        gin.clear_config()
        gin.parse_config_files_and_bindings(
            [os.path.join(GIN_DIR, gin_file)], []
        )
        assert gin.query_parameter("%HIDDEN_DIM") == hidden
        assert len(model.encoder.conv_blocks) == 6
        assert model.encoder.moe_position == 3
        assert len(model.mixer.conv_blocks) == 2
        assert len(model.decoder.conv_blocks) == 4
        assert model.decoder.moe_position == 2
        for moe in (model.encoder.moe, model.decoder.moe):
            assert moe.num_experts == experts and moe.top_k == 4
        block = model.encoder.conv_blocks[0]
        assert block.kernel_sizes == (3, 3, 15, 15)
        assert block.dilation_rates == (1, 1, 1, 8)
        assert block.dropout == 0.4
        assert model.label_smoothing == 0.1
