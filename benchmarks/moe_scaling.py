"""Benchmark: a SparseMoE training step with 256 experts vs 16 experts.

SPEC.md section 4: with the same k and the same tokens, a step with 256
experts should cost at most 1.25x a step with 16 experts, because the
dispatch is sparse (expert compute ~ k * tokens * capacity_factor, not
E * tokens). Each configuration runs one tf.function training step (forward,
backward, the trainer's global-norm clip (2.0) and the optimizer apply) in
training mode (noisy gating from zero gate weights, i.e. random routing as
at the start of training). The two expert counts are timed interleaved,
step by step, after a warm-up; the script prints the median per round and
over all rounds, and the ratio 256 / 16, first at the given batch x length
(default 8 x 64 = 512 tokens, d 128, h 512), then in tables over token
counts (`--table_tokens`) for expert sizes `--table_sizes` (d x h: 128 x 512
and multimodel_base.gin's 512 x 512), which say where the ratio meets the
target.

The clip is there because the trainer has it, and it matters here: without
it the update of `w_1` can start before the backward pass has finished
reading `w_1` (for the hidden-layer gradient), and TensorFlow then copies
the whole variable before updating it (copy-on-write of a resource variable
that is still being read; 47 ms for the 67 MB `w_1` at 32768 tokens in a
profile).

What grows with E whatever the dispatch:
- The parameters. The 256-expert layer holds 33.6 M of them (134 MB in
  float32; the 16-expert one 2.1 M). A step reads them (forward), reads
  w_1 again (gradient of the hidden layer; w_0 too when the input needs a
  gradient, which this benchmark's constant input does not), writes their
  gradients and the optimizer reads gradient and parameter and writes the
  parameter (Adam also reads and writes two slots). The script times a
  scale of a 134 MB array (read + write) interleaved with the steps, as
  the memory bandwidth, and prints that traffic's time: the "floor" is
  the ratio the step would have if the 256-expert step cost the 16-expert
  step plus that extra traffic only. At 512 tokens (about 8 tokens per
  expert) this alone is far above 1.25 on a CPU; it shrinks as 1 / tokens.
- The gating: x @ w_gate and x @ w_noise, the normal noise, softplus,
  top-k and the smooth load are `[tokens, E]`, i.e. per token they grow
  with E. The table prints the gating part of the ratio,
  `(gating_256 - gating_16) / step_16` (forward + backward of the gating
  alone); it does not shrink with tokens.
The expert matmul FLOPs are the same for both.

- The expert matmuls: the FLOPs are the same, but 256 experts batch 16x
  smaller matrices (`[E, C, d]` with C = 640 rows at 32768 tokens instead of
  10240); oneDNN runs them 5-15% slower (forward 172 vs 198 GFLOP/s).

Where the gating time goes at 32768 tokens x 256 experts (the gating phase
profiled with one inter-op thread, 176 ms forward + backward): top-(k+1)
25 ms, the uniforms of the noise 18.5 ms plus ~15 ms for the Box-Muller
transform (`gating.standard_normal`; TensorFlow's own normal sampler took ~50
ms), four gate matmuls (two forward, two weight gradients) ~11 ms each,
softplus 13 ms and ~40 element-wise ops of 1-4 ms each; the top-k gradients
go into `[tokens, E]` by SparseToDense (~3 ms; scatter_nd took ~27 ms). XLA
does not help on this CPU: `jit_compile=True` made the normal noise 1.85 s
and the gating forward (softplus, noisy logits, top-k, smooth load) 977 ms
against 70 ms op by op; its element-wise part alone was 25 ms against 28
ms. The gate matmuls are `2 * d * E` FLOPs per token against
`2 * d * h * k` for the experts, so their part of the ratio is ~E / (h k)
whatever d (0.1 at h = 512, k = 4, forward + backward); the element-wise
gating is O(E) per token and shrinks against the experts as d * h grows.

Usage: python benchmarks/moe_scaling.py [--capacity_factors 1.25,none]
    [--optimizer sgd|adam] [--batch 8 --length 64 --hidden 128 ...]
    [--table_tokens 512,2048,8192,16384,32768 (empty: no table)]
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

from t2t_multimodel.layers import gating as gating_lib  # noqa: E402
from t2t_multimodel.layers import moe  # noqa: E402
from t2t_multimodel.training import steps  # noqa: E402


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


def _make_phases(
    layer: moe.SparseMoE,
    optimizer_name: str,
    x: tf.Tensor,
    clip_norm: float | None = None,
):
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
            loss = gating_lib.cv_squared(
                routing.importance
            ) + gating_lib.cv_squared(routing.load)
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
        if clip_norm is not None:
            # As the trainer (training/steps.py): the global norm reads
            # every gradient, so the update starts after the whole backward.
            g = steps.clip_by_norm_if_needed(
                g, tf.linalg.global_norm(g), clip_norm
            )
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


class _Bandwidth:
    """Memory bandwidth: `2 * v` on a float32 array, read + write.

    Like STREAM's "scale"; the array is as large as the largest layer's
    parameters, so caches do not help. Calling it is one timed "phase":
    it runs interleaved with the steps, under the same machine load.
    """

    def __init__(self, num_floats: int) -> None:
        self.bytes = 2 * 4 * num_floats
        v = tf.Variable(tf.ones((num_floats,), tf.float32))
        self._scale = tf.function(lambda: v * 2.0)

    def __call__(self) -> tf.Tensor:
        return self._scale()[0]  # the slice waits for the whole result


def _traffic(layer: moe.SparseMoE, args) -> tuple[int, str]:
    """Bytes of parameter traffic a step cannot avoid, and what they are
    (the step of `_make_phases` with `args.optimizer`, `args.clip_norm`).

    Every parameter is read in the forward pass, its gradient written (and
    read by the global norm of the clip) and the optimizer reads the
    gradient and the parameter and writes the parameter (Adam also reads
    and writes its two slots); w_1 is read again for the gradient of the
    hidden layer. No kernel fusion across those steps is assumed
    (TensorFlow has none); Keras SGD also writes and reads a temporary
    `lr * grad`, which is not counted.
    """
    size = sum(
        int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize
        for w in layer.trainable_weights
    )
    w_1 = int(np.prod(layer.w_1.shape)) * np.dtype(layer.w_1.dtype).itemsize
    optimizer_name, clip = args.optimizer, args.clip_norm is not None
    passes = (5 if optimizer_name == "sgd" else 9) + int(clip)
    what = (
        f"{passes} passes over all parameters (forward read, gradient "
        f"write, {'norm read, ' if clip else ''}{optimizer_name} "
        f"{passes - 2 - int(clip)}) + 1 over w_1"
    )
    return passes * size + w_1, what


def _build(args, experts: int, factor, x: tf.Tensor):
    layer = moe.SparseMoE(
        args.hidden,
        args.intermediate,
        experts,
        top_k=args.top_k,
        capacity_factor=factor,
        seed=1,
    )
    return layer, _make_phases(layer, args.optimizer, x, args.clip_norm)


def _interleaved(phases: dict, warmup: int, steps: int) -> dict:
    """Times each phase `steps` times, one call of each in turn."""
    for fn in phases.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in phases}
    for _ in range(steps):
        for key, fn in phases.items():
            times[key].append(_time(fn))
    return times


def _inputs(batch: int, length: int, hidden: int) -> tf.Tensor:
    return tf.constant(
        np.random.default_rng(0)
        .normal(size=(batch, length, hidden))
        .astype("float32")
    )


def _detail(args, factor, experts: list[int], bandwidth: _Bandwidth) -> None:
    """Rounds and phases at `batch x length` tokens."""
    print(f"capacity_factor={factor}")
    x = _inputs(args.batch, args.length, args.hidden)
    layers, phases = {}, {("bandwidth", 0): bandwidth}
    for e in experts:
        layers[e], fns = _build(args, e, factor, x)
        for name, fn in fns.items():
            phases[name, e] = fn
    times = {key: [] for key in phases}
    for r in range(args.rounds):
        round_times = _interleaved(
            phases, args.warmup if r == 0 else 0, args.steps
        )
        for key in phases:
            times[key] += round_times[key]
        step = {e: statistics.median(round_times["step", e]) for e in experts}
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
    traffic = {e: _traffic(layer, args) for e, layer in layers.items()}
    rate = bandwidth.bytes / statistics.median(times["bandwidth", 0])
    floor = {e: t / rate for e, (t, _) in traffic.items()}
    step = {e: statistics.median(times["step", e]) for e in experts}
    print(
        f"  parameter traffic per step ({traffic[experts[0]][1]}): "
        + ", ".join(
            f"E={e} {t / 1e6:.0f} MB = {floor[e] * 1e3:.1f} ms"
            for e, (t, _) in traffic.items()
        )
        + f" at {rate / 1e9:.1f} GB/s (timed interleaved)"
    )
    print(
        "  floor ratio (step_16 + extra traffic) / step_16 = "
        f"{_floor_ratio(step, floor, experts):.3f}; gating part of the "
        f"ratio {_gating_part(times, experts):.3f}"
    )


def _floor_ratio(step: dict, floor: dict, experts: list[int]) -> float:
    small, large = experts[0], experts[-1]
    return (step[small] + floor[large] - floor[small]) / step[small]


def _gating_part(times: dict, experts: list[int]) -> float:
    """`(gating_E - gating_16) / step_16` from the medians of `times`."""
    small, large = experts[0], experts[-1]
    med = {key: statistics.median(t) for key, t in times.items()}
    return (med["gating", large] - med["gating", small]) / med["step", small]


def _table(
    args, factor, experts: list[int], bandwidth: _Bandwidth
) -> list[int]:
    """The step ratio over token counts (batch fixed, length varied)."""
    tokens_list = [int(t) for t in args.table_tokens.split(",")]
    small, large = experts[0], experts[-1]
    print(
        f"ratio over token counts (d={args.hidden}, h={args.intermediate}, "
        f"capacity_factor={factor}, batch {args.batch}, "
        f"{args.table_steps} interleaved steps each, medians):"
    )
    print(
        f"  {'tokens':>7} {'GB/s':>5} {'step E=' + str(small):>12} "
        f"{'step E=' + str(large):>13} {'ratio':>6} {'floor':>6} "
        f"{'gating':>7} {'f+g':>6}  target <= 1.25"
    )
    met = []
    for tokens in tokens_list:
        x = _inputs(args.batch, tokens // args.batch, args.hidden)
        phases, traffic = {("bandwidth", 0): bandwidth}, {}
        for e in experts:
            layer, fns = _build(args, e, factor, x)
            phases["gating", e] = fns["gating"]
            phases["step", e] = fns["step"]
            traffic[e] = _traffic(layer, args)[0]
        times = _interleaved(phases, 2, args.table_steps)
        rate = bandwidth.bytes / statistics.median(times["bandwidth", 0])
        floor = {e: t / rate for e, t in traffic.items()}
        step = {e: statistics.median(times["step", e]) for e in experts}
        ratio = step[large] / step[small]
        floor_ratio = _floor_ratio(step, floor, experts)
        gating = _gating_part(times, experts)
        if ratio <= 1.25:
            met.append(tokens)
        print(
            f"  {x.shape[0] * x.shape[1]:>7} {rate / 1e9:>5.1f} "
            f"{step[small] * 1e3:>9.1f} ms "
            f"{step[large] * 1e3:>10.1f} ms {ratio:>6.3f} "
            f"{floor_ratio:>6.3f} {gating:>7.3f} "
            f"{floor_ratio + gating:>6.3f}  "
            + ("met" if ratio <= 1.25 else "not met")
        )
    print(
        "  floor: (step_16 + extra parameter traffic at the measured "
        "bandwidth) / step_16; gating: (gating_256 - gating_16) / step_16;"
    )
    print("  f+g: floor + gating, the ratio if nothing else grew with E")
    if met:
        print(f"  target <= 1.25 met at {met} tokens")
    else:
        print("  target <= 1.25 not met at any measured token count")
    return met


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
    parser.add_argument(
        "--clip_norm",
        type=float,
        default=2.0,
        help="global-norm gradient clipping as in the recipe; 0: none",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--table_tokens",
        default="512,2048,8192,16384,32768",
        help="token counts of the ratio table (first capacity factor); "
        "empty: no table",
    )
    parser.add_argument(
        "--table_sizes",
        default="128x512,512x512",
        help="d x h of the experts in the ratio tables: this benchmark's "
        "and multimodel_base.gin's (d 512, expert width 512)",
    )
    parser.add_argument("--table_steps", type=int, default=7)
    args = parser.parse_args()
    args.clip_norm = args.clip_norm or None
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
    largest = max(experts) * 2 * args.hidden * args.intermediate
    bandwidth = _Bandwidth(largest)
    print(
        f"memory bandwidth: 2 * v over {4 * largest / 1e6:.0f} MB (read + "
        "write), timed interleaved with the steps"
    )
    for factor in factors:
        _detail(args, factor, experts, bandwidth)
    if args.table_tokens:
        summary = []
        for size in args.table_sizes.split(","):
            hidden, intermediate = (int(v) for v in size.split("x"))
            table_args = argparse.Namespace(**vars(args))
            table_args.hidden, table_args.intermediate = hidden, intermediate
            if 2 * hidden * intermediate > 2 * args.hidden * args.intermediate:
                bandwidth = _Bandwidth(max(experts) * 2 * hidden * intermediate)
            met = _table(table_args, factors[0], experts, bandwidth)
            summary.append(
                f"d x h = {size}: "
                + (f"met at {met} tokens" if met else "not met")
            )
        print("summary, step ratio <= 1.25: " + "; ".join(summary))


if __name__ == "__main__":
    main()
