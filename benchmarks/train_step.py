"""Benchmark: one MultiModel training step, its MFU and peak memory.

SPEC.md section 4: the T2T v1.9 tiny text configuration (batch 8 x 64 -> 64
tokens, vocabulary 8192) took 0.180 s per step in the original code on a
2-core CPU (multimodel_facts.md section 11); the target is 0.09 s. The script
builds the model from a gin model set (`gin/models/<config>.gin`), runs the
trainer's own compiled step (`training/steps.py`: forward, backward, global
norm clipping, optimizer apply) on a fixed batch and reports the median step
time after a warm-up, with:
- the fp32 matmul peak measured in the same process (4096x512 @ 512x2048
  under tf.function) and the model FLOPs utilisation (MFU) against it;
- model FLOPs counted analytically: 2 FLOPs per multiply-add for every
  weight a token goes through (encoder weights x input tokens, decoder and
  softmax weights x target tokens, embedding lookups 0, MoE experts x k/E
  since each token visits k of E experts), plus the attention products
  (4 * B * T * S * d per attention layer), times 3 for forward + backward;
- peak resident memory (`resource.getrusage`).
`--optimizer both` times Keras' Adam against the fused ResourceApplyAdam one.

Where a step's time goes (tf.profiler trace of the fused-Adam step, idle
2-core machine, op times summed over TF's two inter-op threads, so they add
up to more than the wall time): under `--precision mixed_bfloat16` (0.127 s
per step in that run) matmuls 87 ms, Adam 33 ms, bf16 casts 22 ms, dropout
random numbers 16 ms, the rest (transposes, depthwise convs, gathers,
elementwise) ~35 ms. Adam and the casts are bound by memory bandwidth: the
28M parameters (23.6M of them in MoE experts that see ~34 tokens each at
this batch) are read and written by every step, about 44 bytes per
parameter in fp32 (forward and backward reads, gradient write, norm read,
Adam's 28) and 50 in bf16 (plus the casts), 1.2-1.4 GB per step, i.e.
37-42 ms at the ~33 GB/s this machine streams. With the matmuls at their
bf16 speed that leaves the 0.09 s target out of reach of op-by-op TF here.
A later profile (0.146 s per step, 270 ms of op time) adds: the expert
matmuls run at 110-140 bf16 GFLOP/s, not ~400, because each expert sees
~34 rows (padded to the largest load, as T2T v1.9 drops no token), so the
decoder MoE alone spends ~27 ms of op time in batched matmuls; the dropout
random numbers take 17.6 ms and the casts 26.7 ms. What would close the gap
is kernel fusion TensorFlow does not offer on this CPU (one pass for clip,
Adam and the bf16 copy of each weight; dropout masks from fewer random
bits), and XLA does not compile this step (performance_notes.md).

Usage: python benchmarks/train_step.py --config=multimodel_t2t_v19_tiny
    [--optimizer fused_adam|keras_adam|both] [--steps 20 --warmup 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gin  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from t2t_multimodel.modalities import specs as specs_lib  # noqa: E402
from t2t_multimodel.models import build  # noqa: E402
from t2t_multimodel.training import configs, optimizers, steps  # noqa: E402

SYMBOL = "t2t_multimodel.modalities.symbol.SymbolModality"


def matmul_peak(repeats: int = 20) -> tuple[float, float, float]:
    """fp32 GFLOP/s of 4096x512 @ 512x2048 under tf.function.

    Returns:
      (median wall, best wall, per process CPU second) GFLOP/s; the last is
      insensitive to other processes sharing the CPU.
    """
    a = tf.random.normal([4096, 512])
    b = tf.random.normal([512, 2048])
    f = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    f(a, b).numpy()
    times = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / repeats
    flop = 2 * 4096 * 512 * 2048
    return (
        flop / statistics.median(times) / 1e9,
        flop / min(times) / 1e9,
        flop / cpu / 1e9,
    )


def _layers(layer):
    return layer._flatten_layers(include_self=True, recursive=True)


def model_flops(model, batch: int, src_len: int, tgt_len: int) -> dict:
    """Analytic training FLOPs of one text -> text step (see docstring)."""
    src, tgt = batch * src_len, batch * tgt_len
    forward = {
        "softmax": 0.0,
        "moe_experts": 0.0,
        "encoder": 0.0,
        "decoder": 0.0,
        "gating": 0.0,
        "attention_products": 0.0,
    }
    experts = {}
    for layer in _layers(model):
        if type(layer).__name__ == "SparseMoE":
            experts[layer.path] = layer.top_k / layer.num_experts
    for w in model.trainable_weights:
        path, size = w.path, float(np.prod(w.shape))
        if "emb" in path.rsplit("/", 1)[-1] or len(w.shape) < 2:
            continue  # Lookups, norms and biases: no matmul FLOPs.
        # Paths are <model>/<component>/...; the component names the encoder
        # (e.g. "encoder", "t2tv19_encoder") or not (decoder, mixer, top).
        in_encoder = "encoder" in path.split("/")[1]
        tokens = src if in_encoder else tgt
        name = path.rsplit("/", 1)[-1]
        owner = path.rsplit("/", 1)[0]
        if owner in experts and name in ("w_0", "w_1"):
            forward["moe_experts"] += 2 * tokens * size * experts[owner]
        elif owner in experts:
            forward["gating"] += 2 * tokens * size
        elif "softmax" in path:
            forward["softmax"] += 2 * tokens * size
        else:
            key = "encoder" if in_encoder else "decoder"
            forward[key] += 2 * tokens * size
    for layer in _layers(model):
        if type(layer).__name__ == "MultiHeadAttention":
            depth = layer.hidden_dim
            # Scores and weighted values; self-attention (T x T) and
            # encoder-decoder attention (T x S) are equal at S == T here.
            forward["attention_products"] += (
                4 * batch * tgt_len * src_len * depth
            )
    total = sum(forward.values())
    return {"forward": forward, "train_step": 3 * total}


def _features(batch: int, length: int, vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=(batch, length)).astype(np.int32)
    ids[:, -1] = 1  # EOS
    mask = np.ones((batch, length), bool)
    return {
        "inputs": tf.constant(ids),
        "inputs_mask": tf.constant(mask),
        "targets": tf.constant(np.roll(ids, 1, axis=1)),
        "targets_mask": tf.constant(mask),
        "target_space_id": tf.constant(np.full([batch], 8, np.int32)),
    }


def time_step(model, kind, features, args) -> tuple[list[float], float]:
    """Per-step wall times and mean CPU seconds of the compiled step."""
    config = configs.OptimizerConfig(kind=kind)
    if kind == "keras_adam":
        opt = optimizers.KerasOptimizer(
            keras.optimizers.Adam(
                1e-4,
                beta_1=config.beta_1,
                beta_2=config.beta_2,
                epsilon=config.epsilon,
            )
        )
    else:
        opt = optimizers.FusedAdam(1e-4)
    opt.build(model.trainable_variables)
    step = steps.make_train_step(
        model,
        opt,
        tf.distribute.get_strategy(),
        input_modality="symbol",
        target_modality="symbol",
        label_smoothing=0.1,
        clip_norm=config.clip_norm,
    )
    iterator = iter(tf.data.Dataset.from_tensors(features).repeat())
    multiplier = tf.constant(1.0)
    times = []
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            cpu_start = time.process_time()
        start = time.perf_counter()
        stats = step(iterator, multiplier)
        float(stats["loss"].numpy())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return times, (time.process_time() - cpu_start) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="multimodel_t2t_v19_tiny")
    parser.add_argument(
        "--optimizer",
        default="both",
        choices=["fused_adam", "keras_adam", "both"],
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--precision",
        default="float32",
        help="Keras dtype policy, e.g. mixed_bfloat16 (fp32 master weights)",
    )
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.precision)

    gin.add_config_file_search_path(
        os.path.join(ROOT, "t2t_multimodel", "configs", "models")
    )
    gin.parse_config_file(
        os.path.join(
            ROOT, "t2t_multimodel", "configs", "models", f"{args.config}.gin"
        )
    )
    spec = specs_lib.ModalitySpec("symbol", SYMBOL, {"vocab_size": args.vocab})
    keras.utils.set_random_seed(1)
    model = gin.get_configurable(build.build_model)(
        modality_specs={"symbol": spec}
    )
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    flops = model_flops(model, args.batch, args.length, args.length)
    features = _features(args.batch, args.length, args.vocab)
    peak, best_peak, cpu_peak = matmul_peak()
    kinds = (
        ["fused_adam", "keras_adam"]
        if args.optimizer == "both"
        else [args.optimizer]
    )
    results = {
        "config": args.config,
        "precision": args.precision,
        "trainable_params": params,
        "batch": f"{args.batch} x {args.length} -> {args.length}",
        "vocab": args.vocab,
        "matmul_peak_gflops": round(peak, 1),
        "matmul_best_gflops": round(best_peak, 1),
        "matmul_gflop_per_cpu_second": round(cpu_peak, 1),
        "model_gflop_per_step": round(flops["train_step"] / 1e9, 2),
        "forward_gflop": {
            k: round(v / 1e9, 3) for k, v in flops["forward"].items()
        },
    }
    for kind in kinds:
        times, cpu = time_step(model, kind, features, args)
        median = statistics.median(times)
        results[kind] = {
            "median_step_s": round(median, 4),
            "min_step_s": round(min(times), 4),
            "max_step_s": round(max(times), 4),
            "mfu": round(flops["train_step"] / median / (peak * 1e9), 3),
            "cpu_s_per_step": round(cpu, 4),
            # FLOPs per CPU second relative to the matmul's: the MFU with
            # the time other processes took from this one factored out.
            "mfu_cpu_time": round(
                flops["train_step"] / cpu / (cpu_peak * 1e9), 3
            ),
            # Best step against the best matmul: less sensitive to other
            # processes sharing the CPU.
            "mfu_best": round(
                flops["train_step"] / min(times) / (best_peak * 1e9), 3
            ),
        }
    # ru_maxrss is in KiB on Linux.
    results["peak_rss_gb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2
    )
    results["t2t_v19_reference_s"] = 0.180
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
