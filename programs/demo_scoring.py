"""The demo's dev figures from the export, with their trivial baselines.

What the demo is judged by (issue #19, SPEC.md section 1): each problem's
task metric on its WHOLE dev split, decoded by the same decoder the export
serves (the SavedModel's serving signature of the problem, on raw inputs:
text, image bytes, WAV bytes), beside the score of a model that learned
nothing (`t2t_multimodel.metrics.baselines`):

- translation BLEU: the source sentence copied (`copy_input_bleu`);
- captions BLEU, speech WER: the best single constant output among the 200
  most frequent train targets (`best_constant_output`);
- top-1 accuracy: the majority train class (`majority_class_accuracy`);
- parsing bracket F1: right-branching trees (`right_branching_f1`);
- exact trees: 0 (no trivial tree is ever exactly right);

and the checks that the outputs are not one answer for everything:
distinct outputs, the share of well-formed trees (served answers, and the
share the model wrote as trees before the served repair,
`decoding/tree_repair.py`), and the share of outputs in the problem's
target language or format on in-domain (dev) and
out-of-domain input (`problems/demo/out_of_domain.py`,
`t2t_multimodel.metrics.language`).

Everything is read from the run's own files: dev and train examples from
the TFRecord shards in `data_dir` (text detokenized with the shared
vocabulary, PNG bytes as stored, waveforms encoded as 16-bit WAV), so
nothing is generated or synthesized again.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from problems.demo import out_of_domain
from t2t_multimodel import metrics
from t2t_multimodel.metrics import language

SAMPLE_RATE = 16000
DEFAULT_BATCH_SIZE = 64
# Checks' thresholds (issue #19): at least this share of distinct outputs.
MIN_DISTINCT_SHARE = 0.5
NOTE = (
    "whole dev splits, decoded by the export's serving signatures (the "
    "served decoder); baselines from t2t_multimodel.metrics.baselines"
)
# Metrics where lower is better.
LOWER_IS_BETTER = (metrics.WER,)


def read_split(
    problem: Any,
    data_dir: str,
    split: str,
    keys: Sequence[str] = ("inputs", "targets"),
) -> list[dict]:
    """The examples of one split from its shards, as raw model inputs.

    Args:
      problem: the problem (name, features).
      data_dir: its shards and vocabulary.
      split: `"train"` or `"dev"`.
      keys: the features to read; the others are not parsed (a baseline
        needs the train targets only, not 60,000 images).

    Returns:
      Dicts with `keys` of `inputs` (a str for text, PNG bytes for images,
      float32 `[S]` for audio) and `targets` (a str, or an int class id).
    """
    import tensorflow as tf

    from t2t_multimodel.data import pipeline, tfrecord
    from t2t_multimodel.data import vocabulary as vocabulary_lib

    paths, _ = pipeline.find_shards(problem, split, data_dir)
    vocabularies: dict[str, Any] = {}

    def convert(key: str, value: np.ndarray) -> Any:
        feature = problem.features[key]
        if feature.vocabulary:
            if feature.vocabulary not in vocabularies:
                vocabularies[feature.vocabulary] = (
                    vocabulary_lib.Vocabulary.load(
                        f"{data_dir}/{feature.vocabulary}"
                    )
                )
            ids = [int(i) for i in value.tolist() if i > 1]  # PAD 0, EOS 1.
            return vocabularies[feature.vocabulary].decode(ids)
        if isinstance(value, bytes):  # Encoded images.
            return value
        value = np.asarray(value)
        if value.ndim == 0:  # Class ids.
            return int(value)
        return value.astype(np.float32)  # Waveforms.

    features = {key: problem.features[key] for key in keys}
    dataset = tf.data.TFRecordDataset(paths).map(
        lambda r: tfrecord.parse_example(r, features)
    )
    if all(tuple(f.shape) == () for f in features.values()):
        # Scalars (class ids): whole batches, not one example per call.
        batches = dataset.batch(8192).as_numpy_iterator()
        examples = (
            dict(zip(b, row))
            for b in batches
            for row in zip(*(b[key] for key in b))
        )
    else:
        examples = dataset.as_numpy_iterator()
    return [{key: convert(key, ex[key]) for key in keys} for ex in examples]


def wav_bytes(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A float waveform as 16-bit PCM WAV bytes (what a client sends)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer,
        np.asarray(waveform),
        sample_rate,
        format="WAV",
        subtype="PCM_16",
    )
    return buffer.getvalue()


def _request(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.ndarray):
        return wav_bytes(value)
    return value


@dataclasses.dataclass(frozen=True)
class Served:
    """A signature's answers.

    Attributes:
      answers: strings for text outputs, int class ids for classification.
      repaired: per answer, whether the served tree repair changed it (the
        model had not written a well-formed tree); None for signatures
        without a `repaired` output (everything but parsing).
    """

    answers: list[Any]
    repaired: list[bool] | None


def served_outputs(
    signature: Any,
    input_name: str,
    inputs: Sequence[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Served:
    """The signature's answers for `inputs`, in batches."""
    import tensorflow as tf

    answers: list[Any] = []
    repaired: list[bool] = []
    for start in range(0, len(inputs), batch_size):
        chunk = [_request(x) for x in inputs[start : start + batch_size]]
        out = signature(**{input_name: tf.constant(chunk)})
        if "class_ids" in out:
            answers += [int(i) for i in out["class_ids"].numpy().tolist()]
        else:
            answers += [a.decode("utf-8") for a in out["outputs"].numpy()]
        if "repaired" in out:
            repaired += [bool(r) for r in out["repaired"].numpy()]
    return Served(answers, repaired if len(repaired) == len(answers) else None)


def _unrepaired_share(repaired: Sequence[bool]) -> float:
    return 1.0 - sum(repaired) / max(1, len(repaired))


def task_metrics(
    problem: Any, hypotheses: Sequence[Any], references: Sequence[Any]
) -> dict[str, float]:
    """The problem's task metrics (`problem.metrics`) on the outputs."""
    out: dict[str, float] = {}
    for name in problem.metrics:
        if name == metrics.TOP1:
            hits = sum(int(h == r) for h, r in zip(hypotheses, references))
            out[name] = hits / max(1, len(references))
        elif name == metrics.BLEU:
            out[name] = metrics.bleu(hypotheses, references)
        elif name == metrics.WER:
            out[name] = metrics.word_error_rate(hypotheses, references)
        elif name == metrics.EXACT_TREE:
            out[name] = metrics.exact_match(hypotheses, references)
        elif name == metrics.BRACKET_F1:
            out[name] = metrics.bracket_f1(hypotheses, references)
    return out


def baselines(
    problem: Any,
    *,
    train_targets: Sequence[Any],
    dev_inputs: Sequence[Any],
    references: Sequence[Any],
) -> dict[str, dict[str, Any]]:
    """Each task metric's trivial baseline: `{metric: {name, value, ...}}`."""
    out: dict[str, dict[str, Any]] = {}
    text_inputs = all(isinstance(x, str) for x in dev_inputs)
    for name in problem.metrics:
        if name == metrics.TOP1:
            out[name] = {
                "baseline": "majority class",
                "value": metrics.majority_class_accuracy(
                    list(train_targets), list(references)
                ),
            }
        elif name == metrics.BLEU and text_inputs:
            out[name] = {
                "baseline": "copy the input",
                "value": metrics.copy_input_bleu(dev_inputs, references),
            }
        elif name in (metrics.BLEU, metrics.WER):
            constant, value = metrics.best_constant_output(
                list(train_targets), list(references), metric=name
            )
            out[name] = {
                "baseline": "best constant output",
                "value": value,
                "output": constant,
            }
        elif name == metrics.BRACKET_F1:
            out[name] = {
                "baseline": "right-branching trees",
                "value": metrics.right_branching_f1(
                    list(train_targets), list(references)
                ),
            }
        elif name == metrics.EXACT_TREE:
            out[name] = {"baseline": "none (0)", "value": 0.0}
    return out


def beats(metric: str, value: float | None, baseline: float | None) -> bool:
    """Whether `value` is strictly better than `baseline` for `metric`."""
    if value is None or baseline is None:
        return False
    if metric in LOWER_IS_BETTER:
        return value < baseline
    return value > baseline


def output_checks(
    problem: Any,
    hypotheses: Sequence[Any],
    ood_outputs: Sequence[str],
    *,
    repaired: Sequence[bool] | None = None,
    ood_repaired: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Distinct outputs, well-formed trees and target-language shares.

    `repaired` and `ood_repaired` are the served tree repair's flags (see
    `Served`): with them the checks also give the share of answers that the
    model itself wrote as well-formed trees, before the repair.
    """
    checks: dict[str, Any] = {
        "outputs": len(hypotheses),
        "distinct_outputs": len({str(h) for h in hypotheses}),
    }
    expected = out_of_domain.expected_output(problem)
    if expected == language.TREE:
        checks["well_formed"] = language.target_share(hypotheses, expected)
        if repaired is not None:
            checks["model_well_formed"] = _unrepaired_share(repaired)
        if ood_repaired is not None:
            checks["out_of_domain_model_well_formed"] = _unrepaired_share(
                ood_repaired
            )
    if expected is not None and all(isinstance(h, str) for h in hypotheses):
        checks["expected_output"] = expected
        checks["in_domain_target_share"] = language.target_share(
            hypotheses, expected
        )
        if ood_outputs:
            checks["out_of_domain_target_share"] = language.target_share(
                ood_outputs, expected
            )
            checks["out_of_domain_examples"] = [
                {"source": s, "output": o}
                for s, o in zip(out_of_domain.inputs_for(problem), ood_outputs)
            ][:3]
    return checks


def score_problem(
    loaded: Any,
    problem: Any,
    *,
    data_dir: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """The export's figures, baselines and checks for one problem."""
    from t2t_multimodel.decoding import decoder as decoder_lib
    from t2t_multimodel.decoding import scoring

    input_kind = decoder_lib.input_kind(problem)
    dev = read_split(problem, data_dir, "dev")
    needs_train = scoring.needs_train_targets(
        problem.metrics, text_inputs=input_kind == decoder_lib.TEXT
    )
    train_targets = (
        [
            ex["targets"]
            for ex in read_split(problem, data_dir, "train", ("targets",))
        ]
        if needs_train
        else []
    )
    signature = loaded.signatures[problem.name]
    input_name = decoder_lib.INPUT_NAMES[input_kind]
    dev_inputs = [ex["inputs"] for ex in dev]
    references = [ex["targets"] for ex in dev]
    served = served_outputs(
        signature, input_name, dev_inputs, batch_size=batch_size
    )
    hypotheses = served.answers
    ood_inputs = list(out_of_domain.inputs_for(problem))
    ood = (
        served_outputs(signature, input_name, ood_inputs, batch_size=batch_size)
        if ood_inputs
        else Served([], None)
    )
    values = task_metrics(problem, hypotheses, references)
    base = baselines(
        problem,
        train_targets=train_targets,
        dev_inputs=dev_inputs,
        references=references,
    )
    return {
        "dev_examples": len(dev),
        "metrics": values,
        "baselines": base,
        "beats_baseline": {
            m: beats(m, values.get(m), base.get(m, {}).get("value"))
            for m in values
        },
        "checks": output_checks(
            problem,
            hypotheses,
            ood.answers,
            repaired=served.repaired,
            ood_repaired=ood.repaired,
        ),
        "samples": [
            {"reference": str(r), "output": str(h)}
            for r, h in list(zip(references, hypotheses))[:3]
        ],
    }


def score_export(
    export_dir: str,
    problems: Sequence[Any],
    *,
    data_dir: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Mapping[str, Any]]:
    """`score_problem` for every problem with the reloaded export."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    loaded = tf.saved_model.load(export_dir)
    return {
        p.name: score_problem(
            loaded, p, data_dir=data_dir, batch_size=batch_size
        )
        for p in problems
    }


def score_run(
    out_dir: str,
    *,
    problems: str | Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Mapping[str, Any]]:
    """Scores a finished demo run in `out_dir` and records the figures.

    Reads `out_dir/export` and `out_dir/data`, adds the figures under
    `export_scores` to `out_dir/eval_results.json` (created if absent).

    Args:
      out_dir: the demo's `--out`.
      problems: problem or mixture names (None: the run's, from
        `out_dir/model/problems.json`).
      batch_size: requests per call of a signature.
    """
    import json
    import os

    from problems import registry
    from t2t_multimodel import atomic_write

    if problems is None:
        with open(os.path.join(out_dir, "model", "problems.json")) as f:
            problems = json.load(f)["problems"]
    if isinstance(problems, str):
        problems = [n.strip() for n in problems.split(",") if n.strip()]
    scores = score_export(
        os.path.join(out_dir, "export"),
        registry.resolve(problems),
        data_dir=os.path.join(out_dir, "data"),
        batch_size=batch_size,
    )
    path = os.path.join(out_dir, "eval_results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results["export_scores"] = scores
    results["export_scores_note"] = NOTE
    atomic_write.write_json(path, results)
    return scores
