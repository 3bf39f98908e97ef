"""Tests of the audio modalities (modalities/audio.py)."""

from __future__ import annotations

import numpy as np

from t2t_multimodel.modalities import audio
from tests import testing

RNG = np.random.default_rng(0)
SPEC = RNG.normal(size=(2, 20, 5)).astype("float32")
SPEC_MASK = np.arange(20)[None] < np.array([[20], [9]])
WAVE = RNG.uniform(-1, 1, size=(2, 50)).astype("float32")
WAVE_MASK = np.arange(50)[None] < np.array([[50], [17]])


class TestDownsampleMask:
    def test_any_covered_frame_is_real(self):
        mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], bool)
        np.testing.assert_array_equal(
            np.asarray(audio.downsample_mask(mask, 2)),
            [[1, 1, 1], [1, 1, 0]],
        )
        np.testing.assert_array_equal(
            np.asarray(audio.downsample_mask(mask[:, :5], 2)),
            [[1, 1, 1], [1, 1, 0]],
        )


class TestAudioSpectralModality:
    def test_layer(self):
        testing.run_layer_test(
            audio.AudioSpectralModality,
            {"hidden_dim": 8, "filters": (8, 8, 8)},
            SPEC,
            # Time 20 -> 3 after 3 stride-2 blocks; frequency kept (5).
            expected_output_shape=(2, 15, 8),
            expected_num_trainable_weights=3 * 11,
            call_kwargs={"padding_mask": SPEC_MASK},
        )

    def test_default_widths_are_powers_of_two_then_d(self):
        modality = audio.AudioSpectralModality(16)
        assert [b.filters for b in modality.blocks] == [
            2,
            4,
            8,
            16,
            32,
            64,
            128,
            16,
        ]
        assert all(b.strides == (2, 1) for b in modality.blocks)
        t2t = audio.AudioSpectralModality(
            16, filters=(2, 4, 8, 16, 32, 64, 128, 256, 16)
        )
        assert len(t2t.blocks) == 9

    def test_mask_is_downsampled_and_repeated_over_frequency(self):
        modality = audio.AudioSpectralModality(8, filters=(2, 4, 8))
        out = modality.bottom(SPEC, padding_mask=SPEC_MASK)
        np.testing.assert_array_equal(np.asarray(out["spatial_shape"]), [3, 5])
        # Lengths 20 and 9 -> 10, 5 -> 5, 3 -> 3, 2 frames.
        mask = np.asarray(out["mask"]).reshape(2, 3, 5)
        np.testing.assert_array_equal(mask[:, :, 0], [[1, 1, 1], [1, 1, 0]])
        assert (mask == mask[:, :, :1]).all()

    def test_padded_frames_never_reach_real_ones(self):
        modality = audio.AudioSpectralModality(8, filters=(2, 4, 8))
        changed = SPEC.copy()
        changed[1, 9:] = 50.0
        a = modality.bottom(SPEC, padding_mask=SPEC_MASK)
        b = modality.bottom(changed, padding_mask=SPEC_MASK)
        real = np.asarray(a["mask"])
        np.testing.assert_allclose(
            np.asarray(a["hidden"])[real], np.asarray(b["hidden"])[real], 1e-6
        )


class TestAudioModality:
    def test_layer(self):
        testing.run_layer_test(
            audio.AudioModality,
            # (Widths of 8: LayerNorm over 2 channels amplifies rounding
            # differences between eager and tf.function beyond 1e-5.)
            {"hidden_dim": 8, "filters": (8, 8, 8)},
            WAVE,
            # 50 samples -> 25, 13, 7.
            expected_output_shape=(2, 7, 8),
            expected_num_trainable_weights=3 * 11,
            call_kwargs={"padding_mask": WAVE_MASK},
        )

    def test_mask_and_kernels(self):
        modality = audio.AudioModality(8, num_blocks=3)
        out = modality.bottom(WAVE, padding_mask=WAVE_MASK)
        np.testing.assert_array_equal(np.asarray(out["spatial_shape"]), [7, 1])
        # 17 real samples -> 9 -> 5 -> 3 real frames.
        np.testing.assert_array_equal(np.asarray(out["mask"]).sum(1), [7, 3])
        kernel = modality.blocks[0].conv_steps[0].conv.depthwise_kernel
        assert tuple(kernel.shape) == (3, 1, 1, 1)
        assert out["hidden"].shape[-1] == 8
