"""Tests of `MultiModel` (models/multimodel.py) on every modality pair."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.modalities import audio, class_label, image, symbol
from t2t_multimodel.models import decoder, encoder, io_mixer, multimodel

D = 16
VOCAB = 32
BODY = {"kernel_sizes": (3, 3, 5, 5), "dilation_rates": (1, 1, 1, 2)}
RNG = np.random.default_rng(0)


def _model(dropout=0.0):
    keras.utils.set_random_seed(0)
    modalities = {
        "symbol": symbol.SymbolModality(D, VOCAB, name="symbol"),
        "image": image.ImageModality(
            D, entry_filters=(4, 8), res_filters=(8, 8), name="image"
        ),
        "audio_spectral": audio.AudioSpectralModality(
            D, filters=(8, 8, D), name="audio_spectral"
        ),
        "audio": audio.AudioModality(D, filters=(8, 8, D), name="audio"),
        "class_label_5": class_label.ClassLabelModality(
            D, 5, name="class_label_5"
        ),
    }
    moe = {"num_experts": 4, "top_k": 2}
    return multimodel.MultiModel(
        modalities,
        encoder.Encoder(
            D, num_blocks=2, moe_position=1, dropout=dropout, **moe, **BODY
        ),
        decoder.Decoder(
            D,
            num_blocks=2,
            moe_position=1,
            num_heads=4,
            dropout=dropout,
            **moe,
            **BODY,
        ),
        io_mixer.IOMixer(
            D, num_heads=4, num_conv_blocks=1, dropout=dropout, **BODY
        ),
    )


def _text(batch, length, lengths):
    ids = RNG.integers(2, VOCAB, size=(batch, length)).astype("int32")
    mask = np.arange(length)[None] < np.array(lengths)[:, None]
    ids[np.arange(batch), np.array(lengths) - 1] = 1  # EOS
    return ids * mask, mask


TEXT_IN, TEXT_IN_MASK = _text(2, 6, [6, 4])
TEXT_OUT, TEXT_OUT_MASK = _text(2, 5, [5, 3])
WAVE_MASK = np.arange(64)[None] < np.array([[64], [40]])
SPEC_MASK = np.arange(24)[None] < np.array([[24], [13]])

# (input modality, target modality, features), one batch per problem kind.
PAIRS = {
    "text_to_text": (
        "symbol",
        "symbol",
        {
            "inputs": TEXT_IN,
            "inputs_mask": TEXT_IN_MASK,
            "targets": TEXT_OUT,
            "targets_mask": TEXT_OUT_MASK,
            "target_space_id": np.array([8, 8], "int32"),
        },
    ),
    "image_to_label": (
        "image",
        "class_label_5",
        {
            "inputs": RNG.uniform(size=(2, 32, 32, 1)).astype("float32"),
            "targets": np.array([3, 0], "int32"),
            "target_space_id": np.array([1, 1], "int32"),
        },
    ),
    "image_to_text": (
        "image",
        "symbol",
        {
            "inputs": RNG.uniform(size=(2, 16, 16, 3)).astype("float32"),
            "targets": TEXT_OUT,
            "targets_mask": TEXT_OUT_MASK,
            "target_space_id": np.array([3, 3], "int32"),
        },
    ),
    "spectral_to_text": (
        "audio_spectral",
        "symbol",
        {
            "inputs": RNG.normal(size=(2, 24, 5)).astype("float32")
            * SPEC_MASK[..., None],
            "inputs_mask": SPEC_MASK,
            "targets": TEXT_OUT,
            "targets_mask": TEXT_OUT_MASK,
            "target_space_id": np.array([3, 3], "int32"),
        },
    ),
    "waveform_to_text": (
        "audio",
        "symbol",
        {
            "inputs": RNG.uniform(-1, 1, size=(2, 64)).astype("float32")
            * WAVE_MASK,
            "inputs_mask": WAVE_MASK,
            "targets": TEXT_OUT,
            "targets_mask": TEXT_OUT_MASK,
            "target_space_id": np.array([3, 3], "int32"),
        },
    ),
}


@pytest.fixture(scope="module")
def model():
    return _model()


def _run(model, pair, training=False, **overrides):
    input_modality, target_modality, features = PAIRS[pair]
    features = {**features, **overrides}
    out = model(
        features,
        input_modality=input_modality,
        target_modality=target_modality,
        training=training,
    )
    return features, out


class TestMultiModel:
    @pytest.mark.parametrize("pair", sorted(PAIRS))
    def test_forward_and_loss(self, model, pair):
        features, out = _run(model, pair)
        _, target_modality, _ = PAIRS[pair]
        logits = np.asarray(out["logits"])
        if target_modality == "symbol":
            assert logits.shape == (2, 5, VOCAB)
            expected_weight = TEXT_OUT_MASK.sum()  # 8 real target tokens
        else:
            assert logits.shape == (2, 5)
            expected_weight = 2  # every example
        loss = model.compute_loss(
            features, out, target_modality=target_modality
        )
        assert float(loss["weight_sum"]) == expected_weight
        extra = sum(float(v) for v in model.losses)
        assert float(loss["extra_loss"]) == pytest.approx(extra, rel=1e-6)
        assert extra > 0  # the MoE load-balancing losses
        np.testing.assert_allclose(
            float(loss["loss"]),
            float(loss["loss_sum"]) / expected_weight + extra,
            rtol=1e-6,
        )

    def test_text_loss_by_hand(self, model):
        features, out = _run(model, "text_to_text")
        loss = model.compute_loss(
            features, out, target_modality="symbol", label_smoothing=0.0
        )
        logits = np.asarray(out["logits"], np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, TEXT_OUT[..., None], -1)[..., 0]
        np.testing.assert_allclose(
            float(loss["loss_sum"]), -(picked * TEXT_OUT_MASK).sum(), 1e-5
        )

    def test_decoder_is_causal(self, model):
        _, out = _run(model, "text_to_text")
        changed = TEXT_OUT.copy()
        changed[:, 2] = (changed[:, 2] + 7) % VOCAB + 2
        _, out2 = _run(model, "text_to_text", targets=changed)
        a, b = np.asarray(out["logits"]), np.asarray(out2["logits"])
        # Target 2 is the decoder input at position 3.
        np.testing.assert_allclose(b[:, :3], a[:, :3], atol=1e-6)
        assert np.abs(b[0, 3] - a[0, 3]).max() > 1e-4

    def test_command_token_changes_the_output(self, model):
        _, out = _run(model, "text_to_text")
        _, same = _run(model, "text_to_text")
        _, other = _run(
            model, "text_to_text", target_space_id=np.array([6, 6], "int32")
        )
        a = np.asarray(out["logits"])
        np.testing.assert_array_equal(np.asarray(same["logits"]), a)
        assert np.abs(np.asarray(other["logits"]) - a).max() > 1e-4
        np.testing.assert_allclose(
            np.asarray(model.target_space_embedding.embeddings).std(),
            D**-0.5,
            rtol=0.2,
        )

    def test_class_labels_skip_the_decoder(self, model):
        _, out = _run(model, "image_to_label")
        _, other = _run(
            model, "image_to_label", target_space_id=np.array([9, 9], "int32")
        )
        np.testing.assert_array_equal(
            np.asarray(out["logits"]), np.asarray(other["logits"])
        )

    def test_greedy_decoding_equals_teacher_forcing(self, model):
        for pair in ("text_to_text", "image_to_text"):
            _, _, features = PAIRS[pair]
            input_modality = PAIRS[pair][0]
            encoded = model.encode(features, input_modality=input_modality)
            state = model.initial_decode_state(encoded, 2, 7)
            step = tf.function(model.decode_step, reduce_retracing=True)
            token = tf.zeros([2], "int32")
            tokens, logits = [], []
            for index in range(7):
                step_logits, state = step(
                    token,
                    tf.constant(index),
                    state,
                    target_space_id=features["target_space_id"],
                    target_modality="symbol",
                )
                token = tf.argmax(step_logits, -1, output_type="int32")
                tokens.append(token.numpy())
                logits.append(step_logits.numpy())
            tokens = np.stack(tokens, 1)
            _, out = _run(
                model,
                pair,
                targets=tokens,
                targets_mask=np.ones_like(tokens, bool),
            )
            full = np.asarray(out["logits"])
            np.testing.assert_array_equal(full.argmax(-1), tokens)
            np.testing.assert_allclose(np.stack(logits, 1), full, atol=1e-4)

    def test_config_and_weights_round_trip(self, model):
        config = model.get_config()
        for clone in (
            multimodel.MultiModel.from_config(config),
            keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(model)
            ),
        ):
            assert clone.get_config() == config
            assert sorted(clone.modalities) == sorted(model.modalities)
            clone.set_weights(model.get_weights())
            for pair in ("text_to_text", "image_to_label", "waveform_to_text"):
                _, a = _run(model, pair)
                _, b = _run(clone, pair)
                np.testing.assert_array_equal(
                    np.asarray(a["logits"]), np.asarray(b["logits"])
                )

    def test_keras_file_round_trip(self, model, tmp_path):
        path = str(tmp_path / "multimodel.keras")
        model.save(path)
        keras.utils.set_random_seed(5)  # a fresh init differs before loading
        fresh = multimodel.MultiModel.from_config(model.get_config())
        loaded = keras.saving.load_model(path)
        assert isinstance(loaded, multimodel.MultiModel)
        for pair in ("text_to_text", "image_to_label", "spectral_to_text"):
            _, a = _run(model, pair)
            _, b = _run(loaded, pair)
            _, c = _run(fresh, pair)
            np.testing.assert_array_equal(
                np.asarray(a["logits"]), np.asarray(b["logits"])
            )
            assert np.abs(np.asarray(c["logits"] - a["logits"])).max() > 1e-4

    def test_one_model_trains_on_a_mixture_eagerly(self):
        """T2T's MultiModel crashed on mixed modalities; this one trains."""
        model = _model(dropout=0.1)
        optimizer = keras.optimizers.Adam(3e-3)
        optimizer.build(model.trainable_variables)
        losses = {}
        for _ in range(2):
            for pair in sorted(PAIRS):
                input_modality, target_modality, features = PAIRS[pair]
                with tf.GradientTape() as tape:
                    out = model(
                        features,
                        input_modality=input_modality,
                        target_modality=target_modality,
                        training=True,
                    )
                    loss = model.compute_loss(
                        features, out, target_modality=target_modality
                    )["loss"]
                variables = model.trainable_variables
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(
                    [(g, v) for g, v in zip(grads, variables) if g is not None]
                )
                losses.setdefault(pair, []).append(float(loss))
        for pair, (first, second) in losses.items():
            assert np.isfinite([first, second]).all(), pair
            assert second < first, (pair, first, second)

    @pytest.mark.slow
    def test_one_model_trains_on_a_mixture(self):
        """As above, with Adam and one tf.function per modality pair."""
        model = _model(dropout=0.1)
        optimizer = keras.optimizers.Adam(3e-3)
        optimizer.build(model.trainable_variables)
        steps = {}
        for pair in (
            "text_to_text",
            "image_to_label",
            "image_to_text",
            "spectral_to_text",
        ):
            input_modality, target_modality, _ = PAIRS[pair]

            @tf.function
            def train_step(features, i=input_modality, t=target_modality):
                with tf.GradientTape() as tape:
                    out = model(
                        features,
                        input_modality=i,
                        target_modality=t,
                        training=True,
                    )
                    loss = model.compute_loss(features, out, target_modality=t)[
                        "loss"
                    ]
                variables = model.trainable_variables
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(
                    [(g, v) for g, v in zip(grads, variables) if g is not None]
                )
                return loss

            steps[pair] = train_step
        embedding = np.array(model.modalities["symbol"].input_emb)
        losses = {pair: [] for pair in steps}
        for _ in range(4):
            for pair, train_step in steps.items():
                features = {
                    k: tf.constant(v) for k, v in PAIRS[pair][2].items()
                }
                losses[pair].append(float(train_step(features)))
        for pair, values in losses.items():
            assert np.isfinite(values).all(), pair
            assert values[-1] < values[0], (pair, values)
        # The shared text modality was updated (text in and out).
        assert not np.array_equal(
            embedding, np.asarray(model.modalities["symbol"].input_emb)
        )
