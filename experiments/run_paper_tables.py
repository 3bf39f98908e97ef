#!/usr/bin/env python3
"""Runs the paper's Tables 2-4 in miniature and writes docs/RESULTS.md.

  python experiments/run_paper_tables.py [--seeds=1,2,3] \
      [--rows=joint_all,single_parse] [--steps_per_problem=300] \
      [--out_dir=runs/paper] [--row_timeout_s=1800] [--report_only]
      [--notes=experiments/results_notes.md]
      [--gin_bindings='LEARNING_RATE = 0.189' ...]

Every row (experiments/paper_tables.py ROWS) is one gin file of
gin/experiments/paper/, trained by bin/t2t-mm-trainer into
`out_dir/models/<row>/steps<N>_seed<S>` on the offline demo data (generated
once into `out_dir/data` with one shared vocabulary, as the paper's single
vocabulary). A row is finished when its model directory holds
`eval_results.json` at its step count; finished rows are skipped, so a
killed or timed-out run resumes (the trainer restarts from its checkpoint).
A row past `--row_timeout_s` gets SIGTERM (the trainer saves and exits) and
is left unfinished for the next invocation. At the end the tables of every
finished row go to `--results` with bar plots under `--plots_dir`.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from experiments import paper_tables, results_report  # noqa: E402
from t2t_multimodel import atomic_write  # noqa: E402

TRAINER = os.path.join(ROOT, "bin", "t2t-mm-trainer")
ROW_FILE = "paper_row.json"
DONE, TRAINED, FAILED, TIMEOUT = "done", "trained", "failed", "timeout"


def _read_notes(path: str) -> str:
    """The hand-written observations, or "" when the file is missing."""
    if not path or not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def model_dir_for(out_dir: str, row: paper_tables.Row, steps: int, seed: int):
    """`out_dir/models/<row>/steps<steps>_seed<seed>`."""
    return os.path.join(out_dir, "models", row.name, f"steps{steps}_seed{seed}")


def read_final(model_dir: str, steps: int) -> dict[str, Any] | None:
    """The row's `eval_results.json` if it is the one at `steps`."""
    path = os.path.join(model_dir, "eval_results.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        results = json.load(f)
    return results if results.get("step") == steps else None


def trainer_command(
    row: paper_tables.Row,
    *,
    data_dir: str,
    model_dir: str,
    steps: int,
    seed: int,
    gin_search_paths: Sequence[str] = (),
    extra_bindings: Sequence[str] = (),
) -> list[str]:
    """The t2t-mm-trainer command line of one row and seed."""
    command = [
        sys.executable,
        TRAINER,
        f"--gin_file={row.gin_file}",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        f"--gin_bindings=TRAIN_STEPS = {steps}",
        f"--gin_bindings=SEED = {seed}",
    ]
    if gin_search_paths:
        command.append("--gin_search_paths=" + ",".join(gin_search_paths))
    command += [f"--gin_bindings={b}" for b in extra_bindings]
    return command


def _add_seconds(
    model_dir: str,
    seconds: float,
    steps: int,
    seed: int,
    extra_bindings: Sequence[str] = (),
):
    path = os.path.join(model_dir, ROW_FILE)
    info = {"seconds": 0.0}
    if os.path.exists(path):
        with open(path) as f:
            info = json.load(f)
    info.update(steps=steps, seed=seed, gin_bindings=list(extra_bindings))
    info["seconds"] = info.get("seconds", 0.0) + seconds
    atomic_write.write_json(path, info)


def _row_bindings(model_dir: str) -> list[str] | None:
    """The extra gin bindings a row was trained with (None: never run)."""
    path = os.path.join(model_dir, ROW_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("gin_bindings", [])


def run_row(
    row: paper_tables.Row,
    *,
    data_dir: str,
    model_dir: str,
    steps: int,
    seed: int,
    timeout_s: float | None = None,
    gin_search_paths: Sequence[str] = (),
    extra_bindings: Sequence[str] = (),
) -> str:
    """Trains one row and seed unless finished; returns its status.

    Returns:
      `done` (already finished), `trained`, `failed` (the trainer's exit
      code was not 0; its log is `model_dir/train.log`) or `timeout`.
    """
    trained_with = _row_bindings(model_dir)
    if trained_with is not None and trained_with != list(extra_bindings):
        raise ValueError(
            f"{model_dir} was trained with --gin_bindings "
            f"{trained_with}, not {list(extra_bindings)}: use another "
            "--out_dir for other bindings"
        )
    if read_final(model_dir, steps) is not None:
        return DONE
    os.makedirs(model_dir, exist_ok=True)
    command = trainer_command(
        row,
        data_dir=data_dir,
        model_dir=model_dir,
        steps=steps,
        seed=seed,
        gin_search_paths=gin_search_paths,
        extra_bindings=extra_bindings,
    )
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.monotonic()
    with open(os.path.join(model_dir, "train.log"), "a") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = None
    _add_seconds(
        model_dir, time.monotonic() - start, steps, seed, extra_bindings
    )
    if code is None:
        return TIMEOUT
    if code != 0 or read_final(model_dir, steps) is None:
        return FAILED
    return TRAINED


def ensure_data(problem_names: Sequence[str], data_dir: str, tmp_dir: str):
    """Datagen of the demo problems (complete shards are skipped)."""
    import problems  # noqa: F401  (registers the demo problems)
    from programs import datagen

    datagen.generate_data(
        problem_names=list(problem_names),
        data_dir=data_dir,
        tmp_dir=tmp_dir,
        verbose=False,
    )


def run_all(
    rows: Sequence[paper_tables.Row],
    *,
    out_dir: str,
    data_dir: str,
    seeds: Sequence[int],
    steps_per_problem: int | None = None,
    row_timeout_s: float | None = None,
    gin_search_paths: Sequence[str] = (),
    extra_bindings: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> dict[tuple[str, int], str]:
    """Every row for every seed, in order; returns (row, seed) -> status."""
    log = log or functools.partial(print, flush=True)
    statuses = {}
    for seed in seeds:
        for row in rows:
            steps = row.steps_for(steps_per_problem)
            model_dir = model_dir_for(out_dir, row, steps, seed)
            log(f"{row.name} seed {seed}: {steps} steps -> {model_dir}")
            status = run_row(
                row,
                data_dir=data_dir,
                model_dir=model_dir,
                steps=steps,
                seed=seed,
                timeout_s=row_timeout_s,
                gin_search_paths=gin_search_paths,
                extra_bindings=extra_bindings,
            )
            log(f"{row.name} seed {seed}: {status}")
            statuses[(row.name, seed)] = status
    return statuses


def collect(
    rows: Sequence[paper_tables.Row],
    *,
    out_dir: str,
    seeds: Sequence[int],
    steps_per_problem: int | None = None,
) -> tuple[dict, dict]:
    """(row -> seed -> final eval results, row -> seed -> seconds)."""
    results: dict[str, dict[int, Any]] = {}
    seconds: dict[str, dict[int, float]] = {}
    for row in rows:
        steps = row.steps_for(steps_per_problem)
        for seed in seeds:
            model_dir = model_dir_for(out_dir, row, steps, seed)
            final = read_final(model_dir, steps)
            if final is None:
                continue
            results.setdefault(row.name, {})[seed] = final
            info_path = os.path.join(model_dir, ROW_FILE)
            if os.path.exists(info_path):
                with open(info_path) as f:
                    seconds.setdefault(row.name, {})[seed] = json.load(f)[
                        "seconds"
                    ]
    return results, seconds


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out_dir", default=os.path.join("runs", "paper"))
    parser.add_argument("--data_dir", help="default: OUT_DIR/data")
    parser.add_argument("--tmp_dir", help="default: OUT_DIR/tmp")
    parser.add_argument("--rows", help="comma list (default: every row)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument(
        "--steps_per_problem",
        type=int,
        help="training steps per problem (default: the gin files', 300)",
    )
    parser.add_argument("--row_timeout_s", type=float, default=1800.0)
    parser.add_argument(
        "--gin_bindings",
        action="append",
        default=[],
        help="extra binding for every row's trainer (repeatable), e.g. "
        "'LEARNING_RATE = 0.189'; recorded per run, and a run dir trained "
        "with other bindings is refused (use another --out_dir)",
    )
    parser.add_argument(
        "--results", default=os.path.join(ROOT, "docs", "RESULTS.md")
    )
    parser.add_argument("--plots_dir", default=os.path.join(ROOT, "docs"))
    parser.add_argument(
        "--notes",
        default=os.path.join(ROOT, "experiments", "results_notes.md"),
        help="markdown put after the tables (skipped when missing)",
    )
    parser.add_argument(
        "--report_only", action="store_true", help="only write the tables"
    )
    args = parser.parse_args(argv)
    rows = paper_tables.ROWS
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - {r.name for r in rows}
        if unknown:
            parser.error(f"unknown rows: {sorted(unknown)}")
        rows = tuple(r for r in rows if r.name in wanted)
    seeds = [int(s) for s in args.seeds.split(",")]
    data_dir = args.data_dir or os.path.join(args.out_dir, "data")
    if not args.report_only:
        ensure_data(
            paper_tables.ALL,
            data_dir,
            args.tmp_dir or os.path.join(args.out_dir, "tmp"),
        )
        statuses = run_all(
            rows,
            out_dir=args.out_dir,
            data_dir=data_dir,
            seeds=seeds,
            steps_per_problem=args.steps_per_problem,
            row_timeout_s=args.row_timeout_s,
            extra_bindings=args.gin_bindings,
        )
        bad = [k for k, v in statuses.items() if v in (FAILED, TIMEOUT)]
        if bad:
            print(f"unfinished (rerun to resume): {bad}")
    results, seconds = collect(
        rows,
        out_dir=args.out_dir,
        seeds=seeds,
        steps_per_problem=args.steps_per_problem,
    )
    # Quoted as a shell needs it (e.g. --gin_bindings='LEARNING_RATE = 0.1').
    command = "python experiments/run_paper_tables.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    results_report.write_results(
        [t for t in paper_tables.TABLES],
        rows,
        results,
        seconds,
        path=args.results,
        plots_dir=args.plots_dir,
        seeds=seeds,
        steps_per_problem=args.steps_per_problem,
        command=command.strip(),
        notes=_read_notes(args.notes),
    )
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
