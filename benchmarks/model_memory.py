"""Benchmark: paper-config (multimodel_base) memory and throughput at batch 8.

The original T2T MultiModel ran out of memory at 24 GB on a 64x64 image
problem at batch 8 (multimodel_facts.md). This script builds the paper
architecture at `gin/models/multimodel_base.gin` (d = 512, 60 experts, k = 4,
6 encoder blocks, the I/O mixer, 4 decoder blocks) with one input problem:

- `--input text`: text -> text, batch 8 x `--length` subwords, the shared
  8192-id vocabulary (translation);
- `--input image`: 64x64 RGB images -> 1000 classes (ImageNet-64 style:
  the Xception entry flow, then the encoder and the class-label exit flow);
- `--input speech`: `--frames` 80-bin log-mel frames -> `--length` subwords
  (the spectral audio net, then the whole body).

`--modalities paper8` builds every modality net of the paper's eight-problem
mixture (the shared 8k symbol net, the image entry flow, the spectral audio
net and the 1000-class exit flow), as a Table 1 run holds them, whatever the
input; `--mode train` then also reports the bytes of the parameters and of
Adam's two slots (README "Reproducing Table 1").

It times `--steps` compiled passes after `--warmup` (median, examples/s)
and reports the process's peak resident memory (`ru_maxrss`, so run one
input per process; run_all.py does) before and after them. `--mode train`
times the trainer's full step (forward, backward, clipping, Adam) instead
of the forward pass. The last line is JSON; it says whether the peak fits
in the 24 GB at which the original ran out of memory.

  python benchmarks/model_memory.py --input image [--mode forward|train]
      [--batch 8 --length 64 --image_size 64 --steps 5 --warmup 2]
      [--modalities task|paper8]
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

import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from t2t_multimodel.modalities import specs as modality_specs  # noqa: E402
from t2t_multimodel.models import build  # noqa: E402
from t2t_multimodel.training import optimizers, steps  # noqa: E402

ORIGINAL_OOM_GB = 24.0
NUM_CLASSES = 1000


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def features(args) -> tuple[dict, str, str]:
    """A fixed batch, its input modality and its target modality."""
    rng = np.random.default_rng(0)
    batch = args.batch
    if args.input == "text":
        ids = rng.integers(3, 8192, size=(batch, args.length)).astype(np.int32)
        ids[:, -1] = 1  # EOS
        mask = np.ones((batch, args.length), bool)
        feats = {
            "inputs": ids,
            "inputs_mask": mask,
            "targets": np.roll(ids, 1, axis=1),
            "targets_mask": mask,
            "target_space_id": np.full([batch], 8, np.int32),
        }
        return feats, "symbol", "symbol"
    if args.input == "speech":  # log-mel frames -> a transcript.
        ids = rng.integers(3, 8192, size=(batch, args.length)).astype(np.int32)
        feats = {
            "inputs": rng.standard_normal((batch, args.frames, 80), np.float32),
            "inputs_mask": np.ones((batch, args.frames), bool),
            "targets": ids,
            "targets_mask": np.ones((batch, args.length), bool),
            "target_space_id": np.full([batch], 3, np.int32),
        }
        return feats, "audio_spectral", "symbol"
    size = args.image_size
    feats = {
        "inputs": rng.random((batch, size, size, 3), np.float32),
        "targets": rng.integers(0, NUM_CLASSES, size=(batch,)).astype(np.int32),
        "target_space_id": np.full([batch], 1, np.int32),
    }
    label = modality_specs.class_label(NUM_CLASSES)
    return feats, "image", label.name


def build_model(args, input_modality: str, target_modality: str):
    models = os.path.join(ROOT, "t2t_multimodel", "configs", "models")
    gin.add_config_file_search_path(models)
    gin.parse_config_file(os.path.join(models, f"{args.config}.gin"))
    specs = {"symbol": modality_specs.SYMBOL}
    if args.input == "speech":
        specs["audio_spectral"] = modality_specs.AUDIO_SPECTRAL
    if args.input == "image":
        specs = {
            "image": modality_specs.IMAGE,
            target_modality: modality_specs.class_label(NUM_CLASSES),
        }
    if args.modalities == "paper8":  # Every net of multimodel_paper_8.
        label = modality_specs.class_label(NUM_CLASSES)
        specs = {
            "symbol": modality_specs.SYMBOL,
            "image": modality_specs.IMAGE,
            "audio_spectral": modality_specs.AUDIO_SPECTRAL,
            label.name: label,
        }
    return gin.get_configurable(build.build_model)(modality_specs=specs)


def make_pass(model, args, input_modality, target_modality, feats):
    """The compiled pass to time: forward, or the trainer's train step."""
    if args.mode == "forward":

        @tf.function
        def forward(batch):
            out = model(
                batch,
                input_modality=input_modality,
                target_modality=target_modality,
                training=False,
            )
            return out["logits"]

        tensors = {k: tf.constant(v) for k, v in feats.items()}
        return lambda: forward(tensors)
    opt = optimizers.FusedAdam(1e-4)
    opt.build(model.trainable_variables)
    model.adam_slot_bytes = sum(
        int(np.prod(v.shape)) * v.dtype.size for v in opt.m + opt.v
    )
    step = steps.make_train_step(
        model,
        opt,
        tf.distribute.get_strategy(),
        input_modality=input_modality,
        target_modality=target_modality,
        label_smoothing=0.1,
        clip_norm=2.0,
    )
    iterator = iter(tf.data.Dataset.from_tensors(feats).repeat())
    multiplier = tf.constant(1.0)
    return lambda: step(iterator, multiplier)["loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="multimodel_base")
    parser.add_argument(
        "--input", choices=("text", "image", "speech"), default="text"
    )
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument(
        "--mode", choices=("forward", "train"), default="forward"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--modalities", choices=("task", "paper8"), default="task"
    )
    args = parser.parse_args()

    feats, input_modality, target_modality = features(args)
    model = build_model(args, input_modality, target_modality)
    params = int(sum(np.prod(w.shape) for w in model.weights))
    built_gb = peak_rss_gb()
    run = make_pass(model, args, input_modality, target_modality, feats)
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        np.asarray(run())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = peak_rss_gb()
    shape = {
        "text": f"{args.batch} x {args.length} tokens",
        "speech": f"{args.batch} x {args.frames} frames -> {args.length}",
        "image": f"{args.batch} x {args.image_size}x{args.image_size}x3",
    }[args.input]
    print(f"{args.config} {args.mode} on {args.input} ({shape}):")
    param_bytes = sum(
        int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize
        for w in model.weights
    )
    slot_bytes = getattr(model, "adam_slot_bytes", 0)
    print(f"  modality nets       {', '.join(sorted(model.modalities))}")
    print(f"  parameters          {params / 1e6:.1f} M")
    print(f"  parameter bytes     {param_bytes / 2**30:.2f} GiB")
    if slot_bytes:
        print(f"  Adam slot bytes     {slot_bytes / 2**30:.2f} GiB")
    print(f"  peak RSS after build {built_gb:.2f} GB")
    print(f"  peak RSS            {peak:.2f} GB")
    print(f"  median pass         {seconds * 1e3:.1f} ms")
    print(f"  throughput          {args.batch / seconds:.1f} examples/s")
    fits = peak < ORIGINAL_OOM_GB
    print(
        f"  fits in {ORIGINAL_OOM_GB:.0f} GB (the original ran out): "
        f"{'yes' if fits else 'NO'}"
    )
    result = {
        "config": args.config,
        "mode": args.mode,
        "input": args.input,
        "batch": args.batch,
        "modalities": args.modalities,
        "parameters": params,
        "parameter_bytes": param_bytes,
        "adam_slot_bytes": slot_bytes,
        "peak_rss_gb": round(peak, 3),
        "built_rss_gb": round(built_gb, 3),
        "median_s": round(seconds, 4),
        "examples_per_s": round(args.batch / seconds, 2),
        "fits_24gb": fits,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
