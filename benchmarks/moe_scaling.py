"""Benchmark: a SparseMoE training step with 256 experts vs 16 experts.

SPEC.md section 4: with the same k and the same tokens, a step with 256
experts should cost at most 1.25x a step with 16 experts, because the
dispatch is sparse (expert compute ~ k * tokens * capacity_factor, not
E * tokens). Each configuration runs one tf.function training step (forward,
backward, optimizer apply) in training mode (noisy gating from zero gate
weights, i.e. random routing as at the start of training). The two expert
counts are timed interleaved, step by step, after a warm-up; the script
prints the median per round and over all rounds, and the ratio 256 / 16.

What grows with E whatever the dispatch: the gating (x @ w_gate, the noise
and the smooth load are [tokens, E]) and the parameters. At 8 x 64 tokens
the 256-expert layer holds 33.6 M parameters (134 MB in float32; the
16-expert one 2.1 M): every step reads them twice (forward and input
gradients), writes their gradients and updates them, so on a CPU the step
is bound by that memory traffic (about 8 tokens per expert). The expert
matmul FLOPs are the same for both. `--length 1024` (8192 tokens, ~130
tokens per expert) shows the compute-bound regime.

Usage: python benchmarks/moe_scaling.py [--capacity_factors 1.25,none]
    [--optimizer sgd|adam] [--batch 8 --length 64 --hidden 128 ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from t2t_multimodel.layers import moe  # noqa: E402


def _machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln for ln in f if ln.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    except OSError:
        pass
    return (
        f"cpu: {cpu}; cores: {os.cpu_count()}; "
        f"tensorflow {tf.__version__}; keras {keras.__version__}; "
        f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}"
    )


def _make_phases(layer: moe.SparseMoE, optimizer_name: str, x: tf.Tensor):
    """tf.functions for the forward pass, forward + backward, full step."""
    layer(x[:1], training=False)  # builds the weights
    if optimizer_name == "adam":
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        optimizer = keras.optimizers.SGD(1e-2)
    optimizer.build(layer.trainable_weights)

    def grads():
        with tf.GradientTape() as tape:
            y = layer(x, training=True)
            loss = tf.reduce_mean(tf.square(y)) + tf.add_n(layer.losses)
        return loss, tape.gradient(loss, layer.trainable_weights)

    @tf.function
    def gating():  # noisy top-k gating and its loss, forward + backward
        with tf.GradientTape() as tape:
            routing = layer.route(
                tf.reshape(x, (-1, layer.hidden_dim)), training=True
            )
            loss = moe.cv_squared(routing.importance) + moe.cv_squared(
                routing.load
            )
            loss += tf.reduce_sum(routing.expert_gate)
        g = tape.gradient(loss, [layer.w_gate, layer.w_noise])
        return loss + tf.add_n([tf.reduce_sum(v[:, :1]) for v in g])

    @tf.function
    def forward():
        return layer(x, training=True)[0, 0]

    @tf.function
    def forward_backward():
        loss, g = grads()
        return loss + tf.add_n([tf.reduce_sum(v[..., :1]) for v in g])

    @tf.function
    def step():
        loss, g = grads()
        optimizer.apply_gradients(zip(g, layer.trainable_weights))
        return loss

    return {
        "gating": gating,
        "forward": forward,
        "fwd+bwd": forward_backward,
        "step": step,
    }


def _time(fn) -> float:
    start = time.perf_counter()
    fn().numpy()  # .numpy() waits for the result
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", default="16,256")
    parser.add_argument("--capacity_factors", default="1.25,none")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--intermediate", type=int, default=512)
    parser.add_argument("--top_k", type=int, default=4)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    experts = [int(e) for e in args.experts.split(",")]
    factors = [
        None if f.lower() == "none" else float(f)
        for f in args.capacity_factors.split(",")
    ]
    print(_machine_info())
    tokens = args.batch * args.length
    expert_flops = 6 * args.top_k * tokens * 2 * args.hidden * args.intermediate
    print(
        f"tokens {args.batch}x{args.length}={tokens}, d={args.hidden}, "
        f"h={args.intermediate}, k={args.top_k}, optimizer {args.optimizer}; "
        f"expert matmul FLOPs per step (k routed, fwd+bwd) "
        f"{expert_flops / 1e9:.2f} G"
    )
    x = tf.constant(
        np.random.default_rng(0)
        .normal(size=(args.batch, args.length, args.hidden))
        .astype("float32")
    )
    for factor in factors:
        print(f"capacity_factor={factor}")
        layers, phases = {}, {}
        for e in experts:
            layers[e] = moe.SparseMoE(
                args.hidden,
                args.intermediate,
                e,
                top_k=args.top_k,
                capacity_factor=factor,
                seed=1,
            )
            for name, fn in _make_phases(layers[e], args.optimizer, x).items():
                phases[name, e] = fn
        for fn in phases.values():
            for _ in range(args.warmup):
                fn()
        times = {key: [] for key in phases}
        for r in range(args.rounds):
            round_times = {key: [] for key in phases}
            for _ in range(args.steps):
                for key, fn in phases.items():  # interleaved
                    round_times[key].append(_time(fn))
            for key in phases:
                times[key] += round_times[key]
            step = {
                e: statistics.median(round_times["step", e]) for e in experts
            }
            print(
                f"  round {r} step: "
                + ", ".join(f"E={e} {t * 1e3:.1f} ms" for e, t in step.items())
                + f", ratio {step[experts[-1]] / step[experts[0]]:.3f}"
            )
        drops = {
            e: float(layer.dropped_count) / float(layer.assignment_count)
            for e, layer in layers.items()
        }
        print(
            "  dropped assignments (last step): "
            + ", ".join(f"E={e} {v:.1%}" for e, v in drops.items())
        )
        params = {
            e: sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
            for e, layer in layers.items()
        }
        print(
            "  trainable parameters: "
            + ", ".join(f"E={e} {p / 1e6:.1f} M" for e, p in params.items())
        )
        for name in ("gating", "forward", "fwd+bwd", "step"):
            med = {e: statistics.median(times[name, e]) for e in experts}
            print(
                f"  all rounds {name:>8}: "
                + ", ".join(f"E={e} {t * 1e3:7.1f} ms" for e, t in med.items())
                + f"; ratio {experts[-1]}/{experts[0]} = "
                f"{med[experts[-1]] / med[experts[0]]:.3f}"
                + (" (target <= 1.25)" if name == "step" else "")
            )


if __name__ == "__main__":
    main()
