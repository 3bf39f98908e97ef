"""Benchmark: input pipeline throughput vs the tiny model's consumption.

SPEC.md section 4: the input pipeline must never be the bottleneck (at least
10x the rate at which the model consumes examples). The script writes two
synthetic problems with the real writer (`tfrecord.write_split`): a text
problem (sentences of 4..40 words from a fixed word list, a SentencePiece
vocabulary of <= 1024 ids) and an image problem (random 96x96 PNGs, decoded,
resized to 299x299 and augmented as in the paper). It then times
`pipeline.make_dataset` (training mode, shuffling, batch 8) in examples/s,
and, when the model code and `gin/models/multimodel_tiny.gin` are present,
one tiny-MultiModel training step (forward, backward, Adam) on the same
batches, and prints the ratio.

Usage: TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/input_pipeline.py
    [--batches 100] [--steps 5]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import pipeline, preprocessors, tfrecord, vocabulary
from t2t_multimodel.modalities import specs as modality_specs

_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are "
    "or his from at which but have an they you were her she there been one "
    "all we their has would when if so no will can more other what time "
    "über schön straße können würde hätte mädchen grüße été très déjà où"
).split()
_VOCAB = "vocab.bench.model"


def _text_problem(num_examples: int, seed: int) -> problem_lib.Problem:
    def generate(tmp_dir: str):
        rng = np.random.default_rng(seed)
        for _ in range(num_examples):
            words = rng.choice(_WORDS, size=rng.integers(4, 41))
            yield {"inputs": " ".join(words), "targets": " ".join(words[::-1])}

    text = features_lib.Feature(
        tf.int64, (None,), modality_specs.SYMBOL, vocabulary=_VOCAB
    )
    return problem_lib.Problem(
        name="bench_text",
        generators={problem_lib.TRAIN: generate},
        features={"inputs": text, "targets": text},
        target_space_id=features_lib.SpaceID.DE_TOK,
    )


def _image_problem(num_examples: int, seed: int) -> problem_lib.Problem:
    def generate(tmp_dir: str):
        rng = np.random.default_rng(seed)
        for i in range(num_examples):
            pixels = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            yield {"inputs": buf.getvalue(), "targets": i % 10}

    return problem_lib.Problem(
        name="bench_image",
        generators={problem_lib.TRAIN: generate},
        features={
            "inputs": features_lib.Feature(tf.string, (), modality_specs.IMAGE),
            "targets": features_lib.Feature(
                tf.int64, (), modality_specs.class_label(10)
            ),
        },
        preprocessors=(preprocessors.image_feature(),),
        target_space_id=features_lib.SpaceID.IMAGE_LABEL,
    )


def _write(problem, data_dir: str, vocabs: dict) -> None:
    tfrecord.write_split(
        problem.generate(problem_lib.TRAIN, data_dir),
        problem.features,
        vocabs,
        data_dir,
        problem.name,
        problem_lib.TRAIN,
        num_shards=4,
    )


def _pipeline_rate(problem, data_dir: str, batches: int) -> float:
    ds = pipeline.make_dataset(
        problem, "train", data_dir, batch_size=8, seed=1, training=True
    )
    it = iter(ds)
    for _ in range(10):  # warm up (graph building, buffers)
        next(it)
    start = time.perf_counter()
    examples = sum(len(next(it)["targets"]) for _ in range(batches))
    return examples / (time.perf_counter() - start)


def _model_rate(problem, data_dir: str, steps: int) -> float:
    """Examples/s of tiny-MultiModel training steps; raises if unavailable."""
    import gin
    import keras

    from t2t_multimodel.models import build

    gin.clear_config()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gin.add_config_file_search_path(
        os.path.join(root, "t2t_multimodel", "configs", "models")
    )
    gin.parse_config_files_and_bindings(
        ["multimodel_tiny.gin"], [], skip_unknown=False
    )
    specs = [f.modality for f in problem.features.values()]
    model = gin.get_configurable(build.build_model)(modality_specs=specs)
    optimizer = keras.optimizers.Adam(1e-3)
    source, target = problem.input_modality, problem.target_modality

    ds = pipeline.make_dataset(
        problem, "train", data_dir, batch_size=8, seed=1, training=True
    )

    # One trace for every bucket shape: the signature has None lengths.
    @tf.function(input_signature=[ds.element_spec])
    def step(features):
        with tf.GradientTape() as tape:
            outputs = model(
                features,
                input_modality=source,
                target_modality=target,
                training=True,
            )
            loss = model.compute_loss(
                features, outputs, target_modality=target
            )["loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    batches = list(ds.take(steps + 2))
    for batch in batches[:2]:  # trace + warm-up
        step(batch)
    start = time.perf_counter()
    examples = 0
    for batch in batches[2:]:
        loss = step(batch)
        examples += len(batch["targets"])
    float(loss)  # waits for the last step
    return examples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--text_examples", type=int, default=4000)
    parser.add_argument("--image_examples", type=int, default=400)
    args = parser.parse_args()
    print(
        f"cpu cores: {os.cpu_count()}; tensorflow {tf.__version__}; "
        f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    with tempfile.TemporaryDirectory() as data_dir:
        text = _text_problem(args.text_examples, seed=0)
        image = _image_problem(args.image_examples, seed=0)
        vocab = vocabulary.build_vocabulary(
            (ex["inputs"] for ex in text.generate("train", data_dir)),
            os.path.join(data_dir, _VOCAB),
            vocab_size=1024,
        )
        _write(text, data_dir, {_VOCAB: vocab})
        _write(image, data_dir, {})
        for problem, note in (
            (text, f"text, vocab {vocab.vocab_size}, 4-40 words"),
            (image, "image PNG 96x96 -> 299x299, augmented"),
        ):
            rate = _pipeline_rate(problem, data_dir, args.batches)
            print(f"{problem.name}: pipeline {rate:,.0f} examples/s ({note})")
            try:
                model = _model_rate(problem, data_dir, args.steps)
            except Exception as e:  # noqa: BLE001  model code in progress
                print(f"  model consumption pending ({type(e).__name__}: {e})")
                continue
            print(
                f"  tiny MultiModel training: {model:,.1f} examples/s; "
                f"pipeline / model = {rate / model:,.1f}x (target >= 10x)"
            )


if __name__ == "__main__":
    main()
