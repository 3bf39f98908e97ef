"""Evaluation on each problem's dev split -> `model_dir/eval_results.json`.

Per problem (paper section 4): the loss (label-smoothed, as in training),
`log_ppl` (negative log-perplexity, i.e. minus the mean cross-entropy per
target position without smoothing, T2T's `neg_log_perplexity`), per-token
accuracy, and the problem's task metrics: BLEU on detokenized text, top-1 and
top-5 accuracy, WER, or the percentage of exactly right parse trees and the
evalb-style labelled bracket F1 (`t2t_multimodel.metrics`). Decoded metrics
come from the decoder users get: the greedy search of the serving decoder
(`decoding/search.py`: cached `MultiModel.decode_step`, ids outside the
vocabulary masked, `samplers.greedy_search`); a model without
`decode_step` falls back to the argmax of the teacher-forced logits, and
the file says which (`"decoding"`). `EvalConfig.steps=None` evaluates the
whole dev split.

Evaluation runs on the chief alone, outside `strategy.run`: the forward pass
has no collectives, so the other workers simply wait at their next step.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel import metrics
from t2t_multimodel.data import vocabulary as vocabulary_lib
from t2t_multimodel.decoding import search
from t2t_multimodel.training import steps

_log = logging.getLogger(__name__)

GREEDY = "greedy"
TEACHER_FORCED = "teacher_forced_argmax"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """When and how much to evaluate.

    Attributes:
      every: evaluate every this many steps (0: only at the end).
      steps: dev batches per problem (None: the whole dev split, for
        final figures).
      batch_size: dev batch size (None: the training batch size).
      decode: decode greedily for the decoded metrics (BLEU, WER, exact
        trees), as the served model does, when the model supports it.
      max_decode_length: output tokens of greedy decoding (None: the
        reference length + 10 of each batch, rounded up to a multiple of 16).
    """

    every: int = 1000
    steps: int | None = 20
    batch_size: int | None = None
    decode: bool = True
    max_decode_length: int | None = None


def _strip(ids: np.ndarray, vocab_size: int) -> list[int]:
    """Ids up to the first EOS, without padding.

    The model's softmax may be wider than the vocabulary file (SentencePiece
    sizes are upper bounds): ids past the vocabulary become UNK.
    """
    out = []
    for i in np.asarray(ids).tolist():
        if i == vocabulary_lib.EOS_ID:
            break
        if i != vocabulary_lib.PAD_ID:
            out.append(int(i) if i < vocab_size else vocabulary_lib.UNK_ID)
    return out


def _decode_length(targets: np.ndarray, config: EvalConfig) -> int:
    if config.max_decode_length:
        return int(config.max_decode_length)
    return int(-(-(targets.shape[1] + 10) // 16) * 16)


def greedy_decode_fn(
    model: Any, problem: Any, *, num_ids: int, max_length: int
) -> Callable[[Any], tf.Tensor]:
    """Compiled `decode(features) -> ids int32 [B, max_length]`.

    The serving decoder's greedy search (`decoding/search.py`, as
    `ProblemDecoder` with `beam_size=1` runs it) on model features; the
    decoding step is not XLA-compiled here (dev batches vary in length).
    """

    # Dev batches vary in length: one generalized trace, not one each.
    @tf.function(reduce_retracing=True)
    def decode(features):
        fn, state = search.cached_next_logits(
            model,
            features,
            input_modality=problem.input_modality,
            target_modality=problem.target_modality,
            target_space_id=int(problem.target_space_id),
            max_length=max_length,
            num_ids=num_ids,
        )
        batch = tf.shape(features["target_space_id"])[0]
        return search.search(
            fn, state, batch, beam_size=1, max_length=max_length
        )["ids"]

    return decode


class Evaluator:
    """Evaluates a model on the dev split of each problem.

    Args:
      model: the `MultiModel`.
      problems: the problems (`name`, `features`, `metrics`).
      dataset_fn: `(problem) -> tf.data.Dataset` of dev batches (finite).
      data_dir: where the vocabulary files are.
      label_smoothing: smoothing of the reported `loss`.
      config: `EvalConfig`.
    """

    def __init__(
        self,
        model: Any,
        problems: Sequence[Any],
        dataset_fn: Callable[[Any], Any],
        *,
        data_dir: str,
        label_smoothing: float,
        config: EvalConfig,
    ):
        self.model = model
        self.problems = list(problems)
        self.dataset_fn = dataset_fn
        self.data_dir = data_dir
        self.label_smoothing = label_smoothing
        self.config = config
        self._eval_steps: dict[tuple[str, str], Callable] = {}
        self._decoders: dict[tuple, Callable] = {}
        self._vocabularies: dict[str, vocabulary_lib.Vocabulary] = {}
        self.decoding = (
            GREEDY
            if config.decode and hasattr(model, "decode_step")
            else TEACHER_FORCED
        )

    def _vocabulary(self, problem: Any) -> vocabulary_lib.Vocabulary | None:
        name = problem.features["targets"].vocabulary
        if not name:
            return None
        if name not in self._vocabularies:
            self._vocabularies[name] = vocabulary_lib.Vocabulary.load(
                os.path.join(self.data_dir, name)
            )
        return self._vocabularies[name]

    def _eval_step(self, problem: Any) -> Callable:
        key = (problem.input_modality, problem.target_modality)
        if key not in self._eval_steps:
            self._eval_steps[key] = steps.make_eval_step(
                self.model,
                input_modality=key[0],
                target_modality=key[1],
                label_smoothing=self.label_smoothing,
            )
        return self._eval_steps[key]

    def _decoder(self, problem: Any, num_ids: int, length: int) -> Callable:
        key = (
            problem.input_modality,
            problem.target_modality,
            int(problem.target_space_id),
            num_ids,
            length,
        )
        if key not in self._decoders:
            self._decoders[key] = greedy_decode_fn(
                self.model, problem, num_ids=num_ids, max_length=length
            )
        return self._decoders[key]

    def evaluate(self, step: int) -> dict[str, Any]:
        """Evaluates every problem; returns the `eval_results.json` dict."""
        results = {}
        for problem in self.problems:
            results[problem.name] = self.evaluate_problem(problem, step)
        return {"step": step, "decoding": self.decoding, "problems": results}

    def evaluate_problem(self, problem: Any, step: int) -> dict[str, Any]:
        """The metrics of one problem on (part of) its dev split."""
        wanted = set(problem.metrics)
        decoded = wanted & set(metrics.DECODED_METRICS)
        is_text = problem.features["targets"].vocabulary is not None
        vocab = self._vocabulary(problem) if decoded else None
        acc = metrics.Accumulator()
        hypotheses: list[str] = []
        references: list[str] = []
        examples = 0
        eval_step = self._eval_step(problem)
        for i, batch in enumerate(self.dataset_fn(problem)):
            if self.config.steps is not None and i >= self.config.steps:
                break
            out = eval_step(batch)
            targets = batch["targets"].numpy()
            logits = out["logits"].numpy()
            examples += targets.shape[0]
            weight = float(out["weight_sum"])
            acc.add("loss", float(out["loss_sum"]), weight)
            acc.add("nll", float(out["nll_sum"]), weight)
            if is_text or targets.ndim > 1:
                mask = batch.get("targets_mask")
                mask = targets != 0 if mask is None else mask.numpy()
                correct, total = metrics.token_correct(logits, targets, mask)
                acc.add("accuracy", correct, total)
            else:
                n = targets.shape[0]
                acc.add(
                    "accuracy", metrics.top_k_correct(logits, targets, 1), n
                )
                acc.add("top5", metrics.top_k_correct(logits, targets, 5), n)
            if decoded and vocab is not None:
                n = vocab.vocab_size
                if self.decoding == GREEDY:
                    length = _decode_length(targets, self.config)
                    ids = self._decoder(problem, n, length)(batch).numpy()
                else:
                    ids = np.argmax(logits, axis=-1)
                hypotheses += [vocab.decode(_strip(r, n)) for r in ids]
                references += [vocab.decode(_strip(r, n)) for r in targets]
        result: dict[str, Any] = {
            "step": step,
            "examples": examples,
            "loss": acc.result("loss"),
            "log_ppl": -acc.result("nll"),
            "accuracy": acc.result("accuracy"),
        }
        if metrics.TOP1 in wanted:
            result[metrics.TOP1] = acc.result("accuracy")
        if metrics.TOP5 in wanted:
            result[metrics.TOP5] = acc.result("top5")
        if metrics.BLEU in wanted:
            result[metrics.BLEU] = metrics.bleu(hypotheses, references)
        if metrics.WER in wanted:
            result[metrics.WER] = metrics.word_error_rate(
                hypotheses, references
            )
        if metrics.EXACT_TREE in wanted:
            result[metrics.EXACT_TREE] = metrics.exact_match(
                hypotheses, references
            )
        if metrics.BRACKET_F1 in wanted:
            result[metrics.BRACKET_F1] = metrics.bracket_f1(
                hypotheses, references
            )
        if decoded:
            result["decoding"] = self.decoding
        return result
