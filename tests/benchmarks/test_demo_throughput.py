"""Tests of benchmarks/demo_throughput.py's arithmetic (tiny batches)."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

_PATH = os.path.join(
    os.path.dirname(__file__), "..", "..", "benchmarks", "demo_throughput.py"
)
_spec = importlib.util.spec_from_file_location("demo_throughput", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up there.
_spec.loader.exec_module(bench)


def text_batch():
    # 2 examples: targets of 3 and 1 tokens padded to 4; inputs 2 and 2.
    return {
        "inputs": np.zeros((2, 2), np.int32),
        "inputs_mask": np.array([[1, 1], [1, 1]], bool),
        "targets": np.zeros((2, 4), np.int32),
        "targets_mask": np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool),
    }


def image_batch():
    return {
        "inputs": np.zeros((3, 4, 4, 3), np.float32),
        "targets": np.zeros((3,), np.int32),
    }


class TestCounts:
    def test_batch_stats(self):
        assert bench.batch_stats(text_batch()) == bench.BatchStats(
            2, 4, 8, 4, 4
        )
        # Fixed-size features count one token per example.
        assert bench.batch_stats(image_batch()) == bench.BatchStats(
            3, 3, 3, 3, 3
        )

    def test_per_example(self):
        stats = [bench.batch_stats(text_batch())] * 2
        shape = bench.per_example(stats)
        assert shape["target_tokens_per_example"] == 2.0  # 8 tokens / 4.
        assert shape["input_tokens_per_example"] == 2.0
        assert shape["target_padding"] == 0.5  # 8 of 16 positions.
        assert shape["input_padding"] == 0.0
        assert bench.per_example([])["target_padding"] == 0.0


class TestRates:
    def test_throughput(self):
        shapes = {"mt": bench.per_example([bench.batch_stats(text_batch())])}
        out = bench.throughput({"mt": 40.0}, shapes, seconds=4.0)
        assert out["mt"]["examples_per_s"] == 10.0
        assert out["mt"]["target_tokens_per_s"] == 20.0
        assert out["mt"]["target_padding"] == 0.5

    def test_eval_share(self):
        # 100 steps of 0.5 s = 50 s training; 2 evaluations of 25 s = 50 s.
        share = bench.eval_share(
            step_seconds=0.5, train_steps=100, eval_seconds=25.0, evals=2
        )
        assert share == 0.5

    def test_timed_window_skips_warmup(self):
        times = [0.0, 10.0, 11.0, 12.5, 13.0]
        seconds, durations = bench._timed_window(times, warmup=1)
        assert seconds == 3.0 and durations == [1.0, 1.5, 0.5]
        with pytest.raises(ValueError):
            bench._timed_window(times[:2], warmup=1)

    def test_args(self):
        args = bench.parse_args(["--data_dir=/d", "--steps=5"])
        assert args.steps == 5 and args.warmup == 10 and not args.no_eval
