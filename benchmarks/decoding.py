"""Benchmark: cached vs uncached decoding of 128 tokens, beam 4 vs greedy.

SPEC.md section 4: cached incremental decoding (each new token costs one
position: `MultiModel.decode_step` with per-layer conv buffers and attention
caches) must be at least 5x faster than recomputing the prefix (the full
teacher-forced model call on the prefix at every step, as T2T's slow greedy
path did; it also re-encodes the inputs). The model is the
`gin/models/multimodel_tiny.gin` MultiModel (d = 128) with random weights and
the 8192-id shared text modality; EOS is masked out so every run decodes
exactly `--length` tokens. Each variant is one `tf.function` (the samplers'
`tf.while_loop`), warmed up once, then timed `--runs` times (median).

  python benchmarks/decoding.py [--length=128 --batch=1 --input_length=32
      --runs=5 --beam_size=4]

Measured on the shared 2-core CPU (load 4-7, so absolute times vary 3x
between runs), `--runs=3`, ratios from the same run: batch 1: cached
0.16-0.46 s, cached vs uncached 5.5x, 11.9x, 12.2x in three invocations
(15.7-16.4x at load 3), beam 4 1.6-2.6x greedy; batch 16: cached 0.51 s,
uncached 11.3 s (22.4x), beam 4 5.9x greedy. Before the cached step was
compiled with XLA (`DecodeConfig.jit_compile`) and slimmed (~1,030 TF ops
per step then, ~730 now, one XLA cluster when compiled) batch 1 gave 2.5x
(0.70 s vs 1.73 s at load 3): a step was dominated by per-op overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from problems import problem as problem_lib  # noqa: E402
from t2t_multimodel.data import features as features_lib  # noqa: E402
from t2t_multimodel.decoding import decoder, samplers  # noqa: E402
from t2t_multimodel.modalities import specs as modality_specs  # noqa: E402
from t2t_multimodel.models import build  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _AllIds:
    """Stands in for the vocabulary: every id of the 8192-way softmax."""

    vocab_size = modality_specs.VOCAB_SIZE

    def tf_tokenizer(self):
        return None  # The benchmark feeds ids, never text.


def _model():
    gin.add_config_file_search_path(
        os.path.join(_ROOT, "t2t_multimodel/configs/models")
    )
    gin.parse_config_file("multimodel_tiny.gin")
    tf.keras.utils.set_random_seed(0)
    return gin.get_configurable(build.build_model)(
        modality_specs=[modality_specs.SYMBOL]
    )


def _problem():
    text = features_lib.Feature(
        tf.int64, (None,), modality_specs.SYMBOL, vocabulary="v.model"
    )
    return problem_lib.Problem(
        name="benchmark_text",
        generators={},
        features={"inputs": text, "targets": text},
        target_space_id=features_lib.SpaceID.DE_TOK,
    )


def _decode_fn(model, cache: bool, beam_size: int, length: int):
    config = decoder.DecodeConfig(
        beam_size=beam_size, max_length=length, cache=cache
    )
    d = decoder.ProblemDecoder(model, _problem(), _AllIds(), config)

    @tf.function(autograph=False)
    def decode(features):
        fn, state = d.next_logits_fn(features)

        def no_eos(ids_t, index, state):  # Exactly `length` steps.
            logits, state = fn(ids_t, index, state)
            eos = tf.one_hot(samplers.EOS_ID, tf.shape(logits)[-1]) > 0
            return tf.where(eos, samplers.NEG_INF, logits), state

        batch = tf.shape(features["inputs"])[0]
        if beam_size == 1:
            return samplers.greedy_search(no_eos, state, batch, length)[0]
        return samplers.beam_search(no_eos, state, batch, beam_size, length)[0]

    return decode


def _time(fn, features, runs: int) -> tuple[float, np.ndarray]:
    ids = fn(features).numpy()  # Warm-up (tracing).
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(features).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times), ids


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--input_length", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--beam_size", type=int, default=4)
    args = parser.parse_args(argv)
    model = _model()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.input_length)
    features = {
        "inputs": tf.constant(rng.integers(3, 8192, shape), tf.int32),
        "inputs_mask": tf.ones(shape, tf.bool),
        "target_space_id": tf.fill([args.batch], 8),
    }
    print(
        f"tiny MultiModel (d={model.hidden_dim}), batch {args.batch}, "
        f"input {args.input_length} ids, {args.length} output tokens, "
        f"median of {args.runs} runs, {os.cpu_count()} CPUs"
    )
    variants = [
        ("greedy, cached", True, 1),
        ("greedy, uncached", False, 1),
        (f"beam {args.beam_size}, cached", True, args.beam_size),
    ]
    results = {}
    for label, cache, beam in variants:
        fn = _decode_fn(model, cache, beam, args.length)
        seconds, ids = _time(fn, features, args.runs)
        results[label] = (seconds, ids)
        per_token = 1000 * seconds / args.length
        print(f"  {label:18s} {seconds:8.3f} s  ({per_token:6.2f} ms/token)")
    cached, uncached = results["greedy, cached"], results["greedy, uncached"]
    same = np.array_equal(cached[1], uncached[1])
    beam = results[f"beam {args.beam_size}, cached"][0]
    print(f"cached vs uncached greedy: {uncached[0] / cached[0]:.1f}x faster")
    print(f"  (same ids: {same}; target >= 5x)")
    print(f"beam {args.beam_size} vs greedy (cached): {beam / cached[0]:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
