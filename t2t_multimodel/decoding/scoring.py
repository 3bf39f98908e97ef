"""Decoding a whole split and scoring it with its task metric (Table 1).

The paper reports one task metric per problem on a held-out split (section
4, Table 1). `score_split` decodes every example of a stored split
(`split_examples.SplitReader`) in batches with an n-best decoder
(`nbest.NBestDecoder`: beam, greedy, or the top-k classes) and computes the
problem's metrics (`Problem.metrics`, `t2t_multimodel.metrics`):

- `bleu`: sacrebleu's corpus BLEU on detokenized text, with its signature;
- `wer`: jiwer's corpus word error rate, in percent;
- `accuracy_top1`, `accuracy_top5`: fractions, as the trainer reports them;
- `exact_tree` (percent of trees right token for token) and `bracket_f1`
  (evalb-style labelled bracket F1, precision and recall), with the share
  of outputs that are well-formed trees and of those scored after
  `trees.repair` (ill-formed, or another number of leaves than the gold).

Beside each, where it is cheap, the score of a trivial output
(`metrics/baselines.py`): the input copied (translation), the best constant
output among the frequent train targets (captions, speech), the majority
train class (and the five most frequent for top-5), right-branching trees
labelled from the train trees (bracket F1). The train split is read for its
targets only; without it those baselines are left out, with a note.

`write_results` writes, each file atomically: `O` (TSV: index, input,
reference, hypothesis), `O.hyp` and `O.ref` (one a line, for sacrebleu),
`O.beams` with `return_beams` (TSV: input_index, beam_rank, score,
finished, text; every hypothesis in the search's order, `nbest.py`) and
`O.metrics.json`. Tabs and line breaks inside a text are written as
spaces, so every example is one line.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from t2t_multimodel import atomic_write, metrics
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import nbest, split_examples

_log = logging.getLogger(__name__)

NBestFn = Callable[[Mapping[str, Any]], list[list[nbest.Hypothesis]]]
TSV_HEADER = ("index", "input", "reference", "hypothesis")
# Where each metric's value is a fraction rather than a percentage.
FRACTIONS = (metrics.TOP1, metrics.TOP5)


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One decoded example.

    Attributes:
      example: its index, shown input, reference and label.
      hypotheses: the n-best list, best first (at least one).
    """

    example: split_examples.SplitExample
    hypotheses: tuple[nbest.Hypothesis, ...]

    @property
    def hypothesis(self) -> str:
        """The best hypothesis's text."""
        return self.hypotheses[0].text


def decode_split(
    reader: split_examples.SplitReader,
    nbest_fn: NBestFn,
    split: str,
    data_dir: str,
    batch_size: int,
) -> list[Decoded]:
    """Decodes every example of the split, in order.

    Args:
      reader: the problem's `SplitReader`.
      nbest_fn: model features -> one n-best list per example
        (`NBestDecoder.decode_features`, or a stub in tests).
      split: the split name.
      data_dir: where the shards are.
      batch_size: examples per batch.
    """
    decoded: list[Decoded] = []
    start = last_log = time.monotonic()
    for features, examples in reader.batches(split, data_dir, batch_size):
        lists = nbest_fn(features)
        if len(lists) != len(examples):
            raise ValueError(
                f"{len(lists)} n-best lists for {len(examples)} examples"
            )
        decoded += [Decoded(e, tuple(h)) for e, h in zip(examples, lists)]
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            _log.info(
                "decoded %d examples (%.1f/s)",
                len(decoded),
                len(decoded) / (last_log - start),
            )
    return decoded


def _percent(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


def task_metrics(names: Iterable[str], decoded: Sequence[Decoded]) -> dict:
    """The task metrics `names` of the decoded split (module docstring).

    Returns:
      `{metric: value}`, plus `bleu_signature` with BLEU and, with
      `bracket_f1`, `bracket_precision`, `bracket_recall`, `well_formed`
      and `repaired` (percentages of the outputs).
    """
    names = set(names)
    hyps = [d.hypothesis for d in decoded]
    refs = [d.example.reference for d in decoded]
    out: dict[str, Any] = {}
    if metrics.BLEU in names:
        bleu = metrics.corpus_bleu(hyps, refs)
        out[metrics.BLEU] = bleu.score
        out["bleu_signature"] = bleu.signature
    if metrics.WER in names:
        out[metrics.WER] = metrics.word_error_rate(hyps, refs)
    for name, k in ((metrics.TOP1, 1), (metrics.TOP5, 5)):
        if name in names:
            hits = sum(
                d.example.label in [h.class_id for h in d.hypotheses[:k]]
                for d in decoded
            )
            out[name] = hits / len(decoded) if decoded else 0.0
    if metrics.EXACT_TREE in names:
        out[metrics.EXACT_TREE] = metrics.exact_match(hyps, refs)
    if metrics.BRACKET_F1 in names:
        scores = metrics.bracket_scores(hyps, refs)
        out[metrics.BRACKET_F1] = scores.f1
        out["bracket_precision"] = scores.precision
        out["bracket_recall"] = scores.recall
        well_formed = sum(metrics.is_well_formed(h) for h in hyps)
        out["well_formed"] = _percent(well_formed, len(hyps))
        out["repaired"] = _percent(scores.repaired, scores.sentences)
    return out


def baselines(
    names: Iterable[str],
    decoded: Sequence[Decoded],
    *,
    text_inputs: bool,
    train_targets: collections.Counter | None,
    class_name: Callable[[int], str] = str,
) -> dict[str, dict[str, Any]]:
    """The trivial baseline beside each task metric (module docstring).

    Args:
      names: the task metrics.
      decoded: the decoded split (its inputs and references are used).
      text_inputs: whether the inputs are text (translation and parsing:
        BLEU's baseline is the copied input).
      train_targets: train target counts (`SplitReader.train_targets`), or
        None when not read; the baselines that need them are then left out.
      class_name: a class id's name.

    Returns:
      `{metric: {"baseline": name, "value": score, ...}}`.
    """
    names = set(names)
    refs = [d.example.reference for d in decoded]
    out: dict[str, dict[str, Any]] = {}
    if metrics.BLEU in names and text_inputs:
        inputs = [d.example.input for d in decoded]
        out[metrics.BLEU] = {
            "baseline": "copy_input",
            "value": metrics.copy_input_bleu(inputs, refs),
        }
    if not train_targets:
        return out
    frequent = [t for t, _ in train_targets.most_common()]
    for name in (metrics.BLEU, metrics.WER):
        if name in names and name not in out:
            best, value = metrics.best_constant_output(
                frequent, refs, metric=name
            )
            out[name] = {
                "baseline": "best_constant_output",
                "output": best,
                "value": value,
            }
    labels = [d.example.label for d in decoded]
    for name, k in ((metrics.TOP1, 1), (metrics.TOP5, 5)):
        if name in names:
            top = frequent[:k]
            hits = sum(label in top for label in labels)
            out[name] = {
                "baseline": "majority_class" if k == 1 else "top5_classes",
                "classes": [class_name(c) for c in top],
                "value": hits / len(labels) if labels else 0.0,
            }
    if metrics.BRACKET_F1 in names:
        out[metrics.BRACKET_F1] = {
            "baseline": "right_branching",
            "value": metrics.right_branching_f1(
                list(train_targets.elements()), refs
            ),
        }
    return out


def needs_train_targets(names: Iterable[str], *, text_inputs: bool) -> bool:
    """Whether a baseline of `names` needs the train targets."""
    names = set(names)
    if metrics.BLEU in names and not text_inputs:
        return True  # Captions: the best constant output.
    return bool(
        names & {metrics.WER, metrics.TOP1, metrics.TOP5, metrics.BRACKET_F1}
    )


def write_results(
    path: str,
    decoded: Sequence[Decoded],
    report: Mapping[str, Any],
    *,
    return_beams: bool = False,
) -> dict[str, str]:
    """Writes the TSV, `.hyp`, `.ref`, (`.beams`) and `.metrics.json` files.

    Args:
      path: `O`, the TSV; the others are `O.hyp`, `O.ref`, `O.beams` and
        `O.metrics.json`.
      decoded: the decoded split.
      report: the JSON written to `O.metrics.json` (`files` is added).
      return_beams: also write `O.beams`.

    Returns:
      The paths written, by kind (`tsv`, `hyp`, `ref`, `beams`, `metrics`).
    """
    files = {"tsv": path, "hyp": path + ".hyp", "ref": path + ".ref"}
    if return_beams:
        files["beams"] = path + ".beams"
    files["metrics"] = path + ".metrics.json"
    rows = ["\t".join(TSV_HEADER)]
    for d in decoded:
        e = d.example
        fields = (str(e.index), e.input, e.reference, d.hypothesis)
        rows.append("\t".join(nbest.one_line(f) for f in fields))
    atomic_write.write_text(path, "\n".join(rows) + "\n")
    hyps = "".join(nbest.one_line(d.hypothesis) + "\n" for d in decoded)
    atomic_write.write_text(files["hyp"], hyps)
    refs = "".join(nbest.one_line(d.example.reference) + "\n" for d in decoded)
    atomic_write.write_text(files["ref"], refs)
    if return_beams:
        lines = ["\t".join(nbest.TSV_HEADER)]
        for d in decoded:
            lines += nbest.tsv_lines(d.example.index, d.hypotheses)
        atomic_write.write_text(files["beams"], "\n".join(lines) + "\n")
    atomic_write.write_json(files["metrics"], {**report, "files": files})
    return files


@dataclasses.dataclass(frozen=True)
class SplitRun:
    """What to decode and how.

    Attributes:
      split: `test` or `dev` (or `train`).
      data_dir: where the shards are.
      batch_size: examples per decoding batch.
      search: `beam`, `greedy` or `top_k` (for the report).
      search_settings: beam size, alpha, max lengths (for the report).
      baselines: compute the trivial baselines.
      max_train_examples: read at most this many train targets for the
        baselines (None: all).
    """

    split: str
    data_dir: str
    batch_size: int = 8
    search: str = "beam"
    search_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    baselines: bool = True
    max_train_examples: int | None = None


def score_split(
    reader: split_examples.SplitReader,
    nbest_fn: NBestFn,
    run: SplitRun,
) -> tuple[list[Decoded], dict[str, Any]]:
    """Decodes and scores a whole split.

    Returns:
      `(decoded, report)`: the report holds `problem`, `split`, `examples`,
      `decoding` (search and its settings), `metrics` and `baselines`
      (with `baseline_note` when they could not be computed).
    """
    problem = reader.problem
    decoded = decode_split(
        reader, nbest_fn, run.split, run.data_dir, run.batch_size
    )
    report: dict[str, Any] = {
        "problem": problem.name,
        "split": run.split,
        "examples": len(decoded),
        "decoding": {
            "search": run.search,
            "batch_size": run.batch_size,
            **run.search_settings,
        },
        "metrics": task_metrics(problem.metrics, decoded),
    }
    if run.baselines:
        text_inputs = reader.input_kind == decoder_lib.TEXT
        train = None
        if needs_train_targets(problem.metrics, text_inputs=text_inputs):
            train = reader.train_targets(run.data_dir, run.max_train_examples)
        report["baselines"] = baselines(
            problem.metrics,
            decoded,
            text_inputs=text_inputs,
            train_targets=train,
            class_name=reader.class_name,
        )
        if train is None and needs_train_targets(
            problem.metrics, text_inputs=text_inputs
        ):
            report["baseline_note"] = (
                f"no train split of {problem.name} in {run.data_dir}: only "
                "the baselines without train targets were computed"
            )
    return decoded, report


def _shown(name: str, value: float) -> str:
    if name in FRACTIONS:
        return f"{100 * value:.2f}%"
    return f"{value:.2f}"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a few lines of text for the terminal."""
    decoding = report["decoding"]
    how = decoding["search"]
    if how == "beam":
        how += f" search, beam {decoding.get('beam_size')}, alpha "
        how += f"{decoding.get('alpha')}"
    lines = [
        f"{report['problem']} {report['split']}: {report['examples']} "
        f"examples, {how}"
        + (f", {report['checkpoint']}" if report.get("checkpoint") else ""),
        f"{'metric':<20} {'value':>10}   baseline",
    ]
    base = report.get("baselines", {})
    for name, value in report["metrics"].items():
        if not isinstance(value, (int, float)):
            continue
        shown = base.get(name)
        right = ""
        if shown:
            right = f"{_shown(name, shown['value'])} ({shown['baseline']})"
        lines.append(f"{name:<20} {_shown(name, value):>10}   {right}")
    if "bleu_signature" in report["metrics"]:
        lines.append(f"BLEU signature: {report['metrics']['bleu_signature']}")
    if report.get("baseline_note"):
        lines.append(f"note: {report['baseline_note']}")
    return "\n".join(lines)
