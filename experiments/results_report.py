"""docs/RESULTS.md from the rows' `eval_results.json`: tables and plots.

Per problem and column: the dev log-perplexity (minus the trainer's
`log_ppl`), the per-token accuracy and the problem's task metric, as the
mean over seeds with the spread (sample standard deviation), next to the
paper's figures. A difference between two columns counts as within noise
when it is smaller than twice the standard error of the difference of the
means; with one seed nothing can be told from noise, and the text says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from experiments import paper_tables

# The task metric of a problem: the first of these in its eval results,
# with its label and the factor to a percentage or BLEU points.
TASK_METRICS = (
    ("bleu", "BLEU", 1.0),
    ("wer", "WER %", 1.0),
    ("exact_tree", "exact trees %", 1.0),
    ("accuracy_top1", "top-1 %", 100.0),
)
# (key, label) of the three reported metrics.
METRICS = (
    ("log_ppl", "log-ppl"),
    ("accuracy", "acc. %"),
    ("task", "task metric"),
)

Results = Mapping[str, Mapping[int, Mapping[str, Any]]]


def task_metric(result: Mapping[str, Any]) -> tuple[str, float] | None:
    """(label, value) of a problem's task metric, None if it has none."""
    for key, label, factor in TASK_METRICS:
        if key in result:
            return label, factor * float(result[key])
    return None


def metric_value(result: Mapping[str, Any], metric: str) -> float | None:
    """One problem's `log_ppl` (positive), `accuracy` (%) or `task`."""
    if metric == "log_ppl":
        return -float(result["log_ppl"])
    if metric == "accuracy":
        return 100.0 * float(result["accuracy"])
    task = task_metric(result)
    return None if task is None else task[1]


def values(results: Results, row: str, problem: str, metric: str) -> list:
    """The metric of `problem` in `row` for every seed that finished."""
    out = []
    for seed in sorted(results.get(row, {})):
        per_problem = results[row][seed]["problems"].get(problem)
        if per_problem is not None:
            value = metric_value(per_problem, metric)
            if value is not None:
                out.append(value)
    return out


def summarize(xs: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation (0 for one value), count)."""
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, 0.0, n
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var), n


def _cell(xs: Sequence[float], digits: int) -> str:
    if not xs:
        return "—"
    mean, std, n = summarize(xs)
    if n < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def compare(a: Sequence[float], b: Sequence[float]) -> str:
    """Plain words on mean(b) - mean(a) against the seeds' noise."""
    if not a or not b:
        return "not run"
    (ma, sa, na), (mb, sb, nb) = summarize(a), summarize(b)
    diff = mb - ma
    if na < 2 or nb < 2:
        return f"{diff:+.2f} (one seed: cannot be told from noise)"
    se = math.sqrt(sa**2 / na + sb**2 / nb)
    if abs(diff) <= 2 * se:
        return f"{diff:+.2f}, within noise (2 s.e. = {2 * se:.2f})"
    return f"{diff:+.2f}, beyond noise (2 s.e. = {2 * se:.2f})"


def _task_label(results: Results, table, problem: str) -> str:
    for column in table.columns:
        for by_seed in results.get(column.row_for(problem), {}).values():
            result = by_seed["problems"].get(problem)
            task = result and task_metric(result)
            if task:
                return task[0]
    return "task metric"


def table_markdown(table: paper_tables.Table, results: Results) -> str:
    """One table: a line per problem, log-ppl / acc. / task per column."""
    header = ["Problem (paper's)", "Metric"]
    header += [c.header for c in table.columns]
    header += [f"Paper: {c.header}" for c in table.columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for problem in table.problems:
        paper = table.paper.get(problem, ("—",) * len(table.columns))
        name = problem
        if problem in paper_tables.PAPER_PROBLEMS:
            name += f" ({paper_tables.PAPER_PROBLEMS[problem]})"
        for i, (metric, label) in enumerate(METRICS):
            if metric == "task":
                label = _task_label(results, table, problem)
            cells = [
                _cell(values(results, c.row_for(problem), problem, metric), 2)
                for c in table.columns
            ]
            first = [name if i == 0 else "", label]
            papers = list(paper) if i == 0 else [""] * len(paper)
            lines.append("| " + " | ".join(first + cells + papers) + " |")
    return "\n".join(lines)


def comparisons_markdown(table: paper_tables.Table, results: Results) -> str:
    """Each column against the first, per problem and metric, in words."""
    out = []
    reference = table.columns[0]
    for column in table.columns[1:]:
        lines = []
        for problem in table.problems:
            parts = []
            for metric, label in METRICS:
                a = values(results, reference.row_for(problem), problem, metric)
                b = values(results, column.row_for(problem), problem, metric)
                if metric == "task":
                    label = _task_label(results, table, problem)
                if a and b:
                    parts.append(f"{label} {compare(a, b)}")
            if parts:
                lines.append(f"- {problem}: " + "; ".join(parts))
        out.append(f"{column.header} minus {reference.header}:")
        out += lines or ["- no problem has both rows finished yet"]
    out.append(
        "(log-ppl: lower is better; accuracy, BLEU, top-1 and exact trees: "
        "higher is better; WER: lower is better.)"
    )
    return "\n".join(out)


def plot_table(
    table: paper_tables.Table, results: Results, path: str, note: str = ""
) -> str | None:
    """Grouped bars (mean, spread as error bars) per metric -> a PNG.

    `note` is added to the figure title (e.g. that it is a smoke pass).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4))
    width = 0.8 / len(table.columns)
    plotted = False
    for ax, (metric, label) in zip(axes, METRICS):
        for j, column in enumerate(table.columns):
            xs, means, stds = [], [], []
            for i, problem in enumerate(table.problems):
                vals = values(results, column.row_for(problem), problem, metric)
                if vals:
                    mean, std, _ = summarize(vals)
                    xs.append(i + (j - (len(table.columns) - 1) / 2) * width)
                    means.append(mean)
                    stds.append(std)
            if xs:
                plotted = True
                ax.bar(xs, means, width, yerr=stds, label=column.header)
        if metric == "task":
            label = "task metric (BLEU, WER %, exact %, top-1 %)"
        ax.set_title(label)
        ax.set_xticks(range(len(table.problems)))
        ax.set_xticklabels(
            [paper_tables.SHORT_NAMES.get(p, p) for p in table.problems],
            rotation=30,
            ha="right",
        )
    if plotted:
        axes[0].legend(fontsize=8)
    fig.suptitle(f"{table.title} {note}".strip())
    fig.tight_layout()
    if plotted:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=80)
    plt.close(fig)
    return path if plotted else None


LIMITS = """\
## What this scale cannot show

- **Size and length.** Each row trains the tiny MultiModel (d = 128,
  2 + 1 + 2 blocks, 8 experts) for a few hundred steps per problem on a
  2-core CPU; the paper trained models of d = 1536 with hundreds of experts
  for far longer on GPUs. Effects that only appear near convergence (the
  paper's "joint is about as good as single" for large tasks) cannot be
  seen; at this length every model is still learning fast, and small
  differences in the learning rate each problem sees can dominate.
- **The learning rate is a confound of "same steps per problem".** A joint
  row takes 7 times as many optimizer steps as a single row; under the noam
  schedule its learning rate at the end is about 7^-0.5 of the single
  row's, and the shared body gets 7 times as many updates.
- **Stand-in data.** Fashion-MNIST is not ImageNet, the demo translation
  sets are thousands of short sentences rather than WMT, the speech is
  synthetic (espeak-ng), and parsing has 40 trees: Table 3's claim is about
  a small-data task, but 40 trees are far fewer than WSJ's 40k, so parsing
  here is mostly memorization and its exact-tree percentage moves in large
  steps on a handful of dev trees.
- **Small dev sets, few seeds.** Each problem is evaluated on at most 4
  batches of 64 dev examples; the spread is the standard deviation over the
  seeds run (3 by default), itself a rough estimate. A difference is called
  within noise when it is below twice the standard error of the difference
  of the means, which is a lenient test with 3 seeds.
- **The "without attention" ablation is our reading.** The paper does not
  say what replaces attention; here the mixer's attention block and the
  decoder's source attentions become the mean of the encoded inputs, so the
  decoder still sees the input, without learned alignment.
- **No early stopping, no checkpoint selection.** Every figure is the final
  step's; the paper reports its dev-set figures after early stopping.
- **The paper's figures are recalled and unverified** (see
  multimodel_facts.md section 6) and are for other data at full scale: they
  show the direction of each claim, not numbers to match.
"""


def write_results(
    tables: Sequence[paper_tables.Table],
    rows: Sequence[paper_tables.Row],
    results: Results,
    seconds: Mapping[str, Mapping[int, float]],
    *,
    path: str,
    plots_dir: str,
    seeds: Sequence[int],
    steps_per_problem: int | None,
    command: str,
    notes: str = "",
) -> str:
    """Writes the tables, plots and notes to `path`; returns the text.

    `notes` (markdown written by hand after reading the tables, e.g. from
    experiments/results_notes.md) goes after the tables, before the timings.
    """
    default = paper_tables.STEPS_PER_PROBLEM
    smoke = steps_per_problem is not None and steps_per_problem != default
    per_problem = default if steps_per_problem is None else steps_per_problem
    steps = {r.name: r.steps_for(steps_per_problem) for r in rows}
    finished = sum(len(results.get(r.name, {})) for r in rows)
    out = ["# Results: the paper's experiments in miniature", ""]
    if smoke:
        out += [
            f"**SMOKE PASS: {per_problem} steps per problem per row "
            f"({min(steps.values())} to {max(steps.values())} steps per "
            "row). The numbers below mean nothing yet**: they only show "
            "that rows, evaluation files, tables and plots work end to end. "
            "The real tables come from the full run, `python "
            "experiments/run_paper_tables.py` (every row, 3 seeds, "
            f"{default} steps per problem; about 4-5 hours on the 2-core "
            "CPU when nothing else runs, an estimate, not yet measured).",
            "",
        ]
    out += [
        f"Runs finished: {finished} of {len(rows) * len(seeds)} "
        f"({len(rows)} rows x seeds {', '.join(map(str, seeds))}), "
        f"{per_problem} training steps per problem in every row.",
        "",
    ]
    if len(rows) < len(paper_tables.ROWS):
        out += [
            f"Only {len(rows)} of the {len(paper_tables.ROWS)} rows are in "
            f"this report: {', '.join(r.name for r in rows)}.",
            "",
        ]
    out += [
        f"Produced by `{command}` (experiments/run_paper_tables.py; rows in "
        "gin/experiments/paper/, trained by bin/t2t-mm-trainer). Cells are "
        "the mean ± the standard deviation over seeds (a single number: "
        "one seed). log-ppl is the dev log-perplexity (nats per target "
        "position), acc. the per-token (per-example for labels) accuracy.",
        "",
    ]
    for table in tables:
        description = table.description.format(steps_per_problem=per_problem)
        out += [f"## {table.title}", "", description, ""]
        out += [table_markdown(table, results), ""]
        if table.paper_note:
            out += [table.paper_note, ""]
        plot = plot_table(
            table,
            results,
            os.path.join(plots_dir, f"paper_{table.key}.png"),
            f"(SMOKE PASS, {per_problem} steps per problem)" if smoke else "",
        )
        if plot:
            rel = os.path.relpath(plot, os.path.dirname(os.path.abspath(path)))
            out += [f"![{table.title}]({rel})", ""]
        out += [comparisons_markdown(table, results), ""]
    if notes.strip():
        out += [notes.strip(), ""]
    out += ["## Time per row", "", "| Row | Steps | Seconds (mean) |"]
    out += ["|---|---|---|"]
    for row in rows:
        times = list(seconds.get(row.name, {}).values())
        mean = f"{sum(times) / len(times):.0f}" if times else "—"
        out.append(f"| {row.name} | {steps[row.name]} | {mean} |")
    out += ["", LIMITS]
    text = "\n".join(out)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text
