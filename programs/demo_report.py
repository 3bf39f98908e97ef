"""What the demo shows: training history, curves, the results table.

The demo (`programs/demo.py`) trains with `log_every = 1`, so the trainer's
TensorBoard events under `model_dir/train` hold every step's loss and batch
size for the problem of that step, and `model_dir/eval` every evaluation's
per-problem metrics. This module reads them back (`read_scalars`), counts
the examples each problem was trained on (`examples_seen`), draws
`training_curves.png` (training loss, smoothed, and the dev task metric per
problem over steps), formats the results table and decoded examples, and
writes the demo's report (`report`: `eval_results.json`, the curves, the
printed table).
"""

from __future__ import annotations

import collections
import glob
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from programs import demo_scoring
from t2t_multimodel import atomic_write

# The headline metric of each problem: the first of `Problem.metrics`.
METRIC_LABELS = {
    "accuracy_top1": "top-1 accuracy",
    "accuracy_top5": "top-5 accuracy",
    "bleu": "BLEU",
    "wer": "WER",
    "exact_tree": "exact trees",
    "bracket_f1": "bracket F1",
}
# Accuracies are fractions in eval_results.json (shown as percentages);
# WER and exact trees are already percentages; BLEU is on a 0-100 scale.
FRACTION_METRICS = ("accuracy", "accuracy_top1", "accuracy_top5")
PERCENT_METRICS = ("wer", "exact_tree", "bracket_f1")

Series = dict[str, list[tuple[int, float]]]


def read_scalars(log_dir: str) -> Series:
    """Every scalar in the TensorBoard event files of `log_dir`.

    Returns:
      tag -> `(step, value)` pairs sorted by step (a resumed run that wrote a
      step twice keeps the later value).
    """
    values: dict[str, dict[int, float]] = collections.defaultdict(dict)
    for path in sorted(
        glob.glob(os.path.join(log_dir, "events.out.tfevents*"))
    ):
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.HasField("tensor"):
                        number = float(tf.make_ndarray(value.tensor))
                    else:
                        number = float(value.simple_value)
                    values[value.tag][int(event.step)] = number
        except tf.errors.DataLossError:
            continue  # A file cut short by a killed run: keep what was read.
    return {tag: sorted(steps.items()) for tag, steps in values.items()}


def examples_seen(train: Series, problem_names: Sequence[str]) -> dict:
    """Per problem: training steps and examples (from `<name>/examples`)."""
    seen = {}
    for name in problem_names:
        points = train.get(f"{name}/examples", [])
        seen[name] = {
            "steps": len(points),
            "examples": int(sum(v for _, v in points)),
        }
    return seen


def headline_metric(metrics: Sequence[str]) -> str:
    """The metric a problem is reported by (its first), else `accuracy`."""
    return metrics[0] if metrics else "accuracy"


def format_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in FRACTION_METRICS:
        return f"{100.0 * value:.1f}%"
    if metric in PERCENT_METRICS:
        return f"{value:.1f}%"
    return f"{value:.2f}"


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start)."""
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (cumsum[ends] - cumsum[starts]) / (ends - starts)


def plot_curves(
    path: str,
    *,
    train: Series,
    eval_: Series,
    problem_metrics: Mapping[str, str],
) -> str:
    """Writes the training-curves PNG (matplotlib, Agg backend).

    Left: each problem's training loss over the steps that trained it
    (moving average over 25 of its steps). Middle: the dev loss at each
    evaluation. Right: the dev task metric (percent for accuracies and WER,
    BLEU as is).

    Args:
      path: the PNG to write.
      train: `read_scalars(model_dir/train)`.
      eval_: `read_scalars(model_dir/eval)`.
      problem_metrics: problem name -> its headline metric.

    Returns:
      `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    for name, metric in problem_metrics.items():
        points = train.get(f"{name}/loss", [])
        if points:
            steps, values = np.array(points).T
            axes[0].plot(steps, _smooth(values, 25), label=name, lw=1.2)
        points = eval_.get(f"{name}/loss", [])
        if points:
            steps, values = np.array(points).T
            axes[1].plot(steps, values, marker="o", label=name)
        points = eval_.get(f"{name}/{metric}", [])
        if points:
            steps, values = np.array(points).T
            scale = 100.0 if metric in FRACTION_METRICS else 1.0
            label = f"{name} ({METRIC_LABELS.get(metric, metric)})"
            axes[2].plot(steps, scale * values, marker="o", label=label)
    titles = (
        "training loss (smoothed)",
        "dev loss",
        "dev task metric (%, BLEU as is)",
    )
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("MultiModel demo: one model trained jointly on every problem")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The results table: problem, metric, value, dev and train examples.

    Args:
      rows: dicts with `problem`, `metric`, `value`, `dev_examples`,
        `examples_seen`, `steps`.
    """
    header = (
        f"{'problem':<30} {'metric':<15} {'value':>8} {'dev ex.':>8} "
        f"{'examples seen':>14} {'steps':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['problem']:<30} "
            f"{METRIC_LABELS.get(row['metric'], row['metric']):<15} "
            f"{format_metric(row['metric'], row['value']):>8} "
            f"{row['dev_examples']:>8} {row['examples_seen']:>14} "
            f"{row['steps']:>6}"
        )
    return "\n".join(lines)


def _short(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def examples_text(decoded: Mapping[str, Sequence[Mapping[str, str]]]) -> str:
    """Decoded examples, problem by problem: source, reference, output."""
    lines = []
    for name, examples in decoded.items():
        lines.append(f"== {name}")
        for example in examples:
            lines.append(f"  source:    {_short(example['source'])}")
            lines.append(f"  reference: {_short(example['reference'])}")
            lines.append(f"  output:    {_short(example['output'])}")
            lines.append("")
    return "\n".join(lines).rstrip()


def _report_rows(problems, results, seen) -> list[dict[str, Any]]:
    rows = []
    for problem in problems:
        metric = headline_metric(problem.metrics)
        values = results.get(problem.name, {})
        rows.append(
            {
                "problem": problem.name,
                "metric": metric,
                "value": values.get(metric),
                "dev_examples": values.get("examples", 0),
                "examples_seen": seen[problem.name]["examples"],
                "steps": seen[problem.name]["steps"],
            }
        )
    return rows


def report(
    problems: Sequence[Any],
    *,
    out_dir: str,
    model_dir: str,
    results: Mapping[str, Any],
    decoded: Mapping[str, Any],
    timings: Mapping[str, float],
    verbose: bool = True,
) -> dict[str, Any]:
    """Writes `eval_results.json` and the curves; prints table and examples.

    `results` are the dev results `evaluate` returned; the training history
    comes from the trainer's summaries in `model_dir`.
    """
    train_series = read_scalars(os.path.join(model_dir, "train"))
    eval_series = read_scalars(os.path.join(model_dir, "eval"))
    names = [p.name for p in problems]
    seen = examples_seen(train_series, names)
    metrics = {p.name: headline_metric(p.metrics) for p in problems}
    curves = plot_curves(
        os.path.join(out_dir, "training_curves.png"),
        train=train_series,
        eval_=eval_series,
        problem_metrics=metrics,
    )
    per_problem = {}
    for name in names:
        values = dict(results["problems"].get(name, {}))
        values["examples_seen"] = seen[name]["examples"]
        values["train_steps"] = seen[name]["steps"]
        values["headline_metric"] = metrics[name]
        per_problem[name] = values
    summary = {
        "step": results["step"],
        "decoding": results.get("decoding"),
        "problems": per_problem,
        "decoded_examples": dict(decoded),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "model_dir": model_dir,
        "export_dir": os.path.join(out_dir, "export"),
        "training_curves": curves,
    }
    export_dir = summary["export_dir"]
    if os.path.exists(os.path.join(export_dir, "saved_model.pb")):
        # The judged figures: whole dev splits through the export (the
        # served decoder), each beside its trivial baseline.
        summary["export_scores"] = demo_scoring.score_export(
            export_dir, problems, data_dir=os.path.join(out_dir, "data")
        )
        summary["export_scores_note"] = demo_scoring.NOTE
    atomic_write.write_json(os.path.join(out_dir, "eval_results.json"), summary)
    if verbose:
        _print_report(problems, summary, seen, out_dir)
    return summary


def _print_report(problems, summary, seen, out_dir) -> None:
    print()
    print(examples_text(summary["decoded_examples"]))
    print()
    print(f"Dev results at step {summary['step']}:")
    rows = _report_rows(problems, summary["problems"], seen)
    print(results_table(rows))
    if "export_scores" in summary:
        print(
            "\nThe export (served decoder) on the whole dev splits, beside "
            "each metric's trivial baseline (FLAG: not above it):"
        )
        print(scores_table(summary["export_scores"]))
    times = ", ".join(
        f"{k[:-2]} {v:.0f} s" for k, v in summary["timings_s"].items()
    )
    print(f"\n{times}")
    print(f"Results: {os.path.join(out_dir, 'eval_results.json')}")
    print(f"Curves:  {summary['training_curves']}")
    print(f"Export:  {summary['export_dir']}")
    sys.stdout.flush()


def _check_text(checks: Mapping[str, Any]) -> str:
    parts = [f"{checks['distinct_outputs']}/{checks['outputs']} distinct"]
    if "well_formed" in checks:
        text = f"{100 * checks['well_formed']:.0f}% well-formed"
        if "model_well_formed" in checks:
            # Before the served tree repair (decoding/tree_repair.py).
            text += f" (model {100 * checks['model_well_formed']:.0f}%"
            if "out_of_domain_model_well_formed" in checks:
                ood = checks["out_of_domain_model_well_formed"]
                text += f", OOD {100 * ood:.0f}%"
            text += ")"
        parts.append(text)
    expected = checks.get("expected_output")
    if expected and "in_domain_target_share" in checks:
        share = f"{100 * checks['in_domain_target_share']:.0f}%"
        if "out_of_domain_target_share" in checks:
            share += f" / OOD {100 * checks['out_of_domain_target_share']:.0f}%"
        parts.append(f"{expected}: {share}")
    return ", ".join(parts)


def scores_table(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """The export's dev figures beside their baselines (`demo_scoring`).

    One line per task metric: the value, the trivial baseline's value and
    what it is, `FLAG` when the metric does not beat its baseline, the dev
    examples, and the output checks (distinct outputs, well-formed trees,
    share of outputs in the target language or format in-domain / OOD).
    """
    header = (
        f"{'problem':<28} {'metric':<15} {'value':>7} {'baseline':>8}  "
        f"{'':4} {'dev ex.':>7}  {'baseline is':<22} checks"
    )
    lines = [header, "-" * len(header)]
    for name, score in scores.items():
        checks = _check_text(score["checks"])
        for metric, value in score["metrics"].items():
            base = score["baselines"].get(metric, {})
            flag = "" if score["beats_baseline"].get(metric) else "FLAG"
            lines.append(
                f"{name:<28} {METRIC_LABELS.get(metric, metric):<15} "
                f"{format_metric(metric, value):>7} "
                f"{format_metric(metric, base.get('value')):>8}  {flag:<4} "
                f"{score['dev_examples']:>7}  {base.get('baseline', '-'):<22} "
                f"{checks}"
            )
            checks = ""
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """`python3 -m programs.demo_report --out=runs/demo`: (re)score a run.

    Scores a finished demo run's export on the whole dev splits, records the
    figures in its `eval_results.json` and prints the table.
    """
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo", help="The demo's --out.")
    parser.add_argument("--problems", default=None)
    parser.add_argument(
        "--batch_size", type=int, default=demo_scoring.DEFAULT_BATCH_SIZE
    )
    args = parser.parse_args(argv)
    scores = demo_scoring.score_run(
        args.out, problems=args.problems, batch_size=args.batch_size
    )
    print(scores_table(scores))


if __name__ == "__main__":
    main()
