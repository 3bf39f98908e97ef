"""Runs every benchmark several times and writes BENCHMARKS.md (medians).

Each benchmark script in `benchmarks/` (SPEC.md section 4) runs `--repeats`
times as its own process, one after the other; the figures each run prints
are parsed (`BENCHMARKS` below says which, and the target) and the table
holds their medians over the runs. The report also records the machine
(CPU model, cores, load average at the start, TensorFlow and Keras
versions), the exact commands, and the last run's output of each script.
A script that is missing or fails is reported as such, not skipped silently.

  python benchmarks/run_all.py [--repeats 3] [--only moe_scaling,decoding]
      [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Parser = Callable[[str], dict[str, float]]


def _json_object(text: str) -> dict:
    """The last JSON object printed (pretty-printed or on one line)."""
    start = text.rfind("\n{")
    start = 0 if start < 0 and text.startswith("{") else start + 1
    return json.loads(text[start:])


def _moe(text: str) -> dict[str, float]:
    match = re.search(
        r"all rounds\s+step: E=(\d+)\s+([\d.]+) ms, E=(\d+)\s+([\d.]+) ms; "
        r"ratio \S+ = ([\d.]+)",
        text,
    )
    out = {
        f"step ms, {match[1]} experts, 8x64 tokens": float(match[2]),
        f"step ms, {match[3]} experts, 8x64 tokens": float(match[4]),
        "step ratio 256/16, 8x64 tokens (target <= 1.25)": float(match[5]),
    }
    # The ratio tables: one per expert size d x h, a row per token count.
    tables = re.findall(
        r"ratio over token counts \(d=(\d+), h=(\d+).*?\n(.*?)  floor:",
        text,
        re.S,
    )
    for d, h, rows in tables:
        for tokens, ratio in re.findall(
            r"^\s+(\d+)\s+[\d.]+\s+[\d.]+ ms\s+[\d.]+ ms\s+([\d.]+)",
            rows,
            re.M,
        ):
            key = f"step ratio 256/16, d {d} h {h}, {tokens} tokens"
            out[key + " (target <= 1.25)"] = float(ratio)
    return out


def _pipeline(text: str) -> dict[str, float]:
    out = {}
    rates = re.findall(r"(\w+): pipeline ([\d,.]+) examples/s", text)
    ratios = re.findall(r"pipeline / model = ([\d,.]+)x", text)
    for (name, rate), ratio in zip(rates, ratios + [None] * len(rates)):
        kind = "image" if "image" in name else "text"
        out[f"{kind} pipeline examples/s"] = float(rate.replace(",", ""))
        if ratio is not None:
            out[f"{kind} pipeline / model (target >= 10)"] = float(
                ratio.replace(",", "")
            )
    return out


def _train_step(text: str) -> dict[str, float]:
    result = _json_object(text)
    out = {}
    for kind in ("fused_adam", "keras_adam"):
        if kind in result:
            median = result[kind]["median_step_s"]
            out[f"{kind} step s (T2T: 0.180)"] = median
            out[f"{kind} speed-up vs T2T (target >= 2)"] = 0.180 / median
            out[f"{kind} MFU"] = result[kind]["mfu"]
    out["matmul peak GFLOP/s"] = result["matmul_peak_gflops"]
    out["peak RSS GB"] = result["peak_rss_gb"]
    return out


def _decoding(text: str) -> dict[str, float]:
    out = {}
    for label, seconds in re.findall(
        r"^\s+(.+?)\s+([\d.]+) s\s+\(", text, re.M
    ):
        out[f"{label} s (128 tokens)"] = float(seconds)
    match = re.search(r"cached vs uncached greedy: ([\d.]+)x", text)
    out["cached speed-up (target >= 5)"] = float(match[1])
    match = re.search(r"vs greedy \(cached\): ([\d.]+)x", text)
    out["beam / greedy time"] = float(match[1])
    return out


def _memory(text: str) -> dict[str, float]:
    result = json.loads(text.strip().splitlines()[-1])
    return {
        "peak RSS GB (original: OOM at 24)": result["peak_rss_gb"],
        "examples/s": result["examples_per_s"],
        "median pass s": result["median_s"],
        "parameters M": result["parameters"] / 1e6,
    }


def _serving(text: str) -> dict[str, float]:
    match = re.search(
        r"RSS ([\d.]+) MiB .*?-> ([\d.]+) MiB \(([-+\d.]+) KiB/request\), "
        r"([\d.]+) requests/s",
        text,
    )
    return {
        "RSS after warm-up MiB": float(match[1]),
        "RSS at end MiB": float(match[2]),
        "growth KiB/request": float(match[3]),
        "requests/s": float(match[4]),
    }


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...]
    parse: Parser

    @property
    def command(self) -> list[str]:
        return [sys.executable, f"benchmarks/{self.script}", *self.args]


BENCHMARKS = (
    Benchmark(
        "moe_scaling", "moe_scaling.py", ("--capacity_factors", "1.25"), _moe
    ),
    Benchmark("input_pipeline", "input_pipeline.py", (), _pipeline),
    Benchmark("train_step", "train_step.py", (), _train_step),
    Benchmark(
        "train_step mixed_bfloat16",
        "train_step.py",
        ("--optimizer", "fused_adam", "--precision", "mixed_bfloat16"),
        _train_step,
    ),
    Benchmark("decoding", "decoding.py", (), _decoding),
    Benchmark(
        "model_memory text forward",
        "model_memory.py",
        ("--input", "text"),
        _memory,
    ),
    Benchmark(
        "model_memory image forward",
        "model_memory.py",
        ("--input", "image"),
        _memory,
    ),
    Benchmark(
        "model_memory image train step",
        "model_memory.py",
        ("--input", "image", "--mode", "train"),
        _memory,
    ),
    Benchmark("serving_load", "serving_load.py", (), _serving),
)


def machine() -> dict[str, str]:
    """CPU model, cores, load, library versions."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tensorflow as tf, keras; "
            "print(tf.__version__, keras.__version__)",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "load average at start (1, 5, 15 min)": ", ".join(
            f"{x:.2f}" for x in load
        ),
        "Python": platform.python_version(),
        "TensorFlow": versions[0] if versions else "?",
        "Keras": versions[1] if len(versions) > 1 else "?",
        "OS": platform.platform(),
    }


def run_benchmark(bench: Benchmark, repeats: int) -> dict:
    """Runs `bench` `repeats` times; the medians of every parsed figure."""
    runs, outputs, errors, seconds = [], [], [], []
    for _ in range(repeats):
        start = time.monotonic()
        proc = subprocess.run(
            bench.command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        seconds.append(time.monotonic() - start)
        outputs.append(proc.stdout)
        try:
            if proc.returncode:
                raise RuntimeError(f"exit {proc.returncode}")
            runs.append(bench.parse(proc.stdout))
        except Exception as e:  # noqa: BLE001  reported in the table
            tail = proc.stderr.strip().splitlines()[-3:]
            errors.append(f"{type(e).__name__}: {e}; " + " | ".join(tail))
    keys = [k for k in (runs[0] if runs else {})]
    medians = {k: statistics.median(r[k] for r in runs if k in r) for k in keys}
    return {
        "medians": medians,
        "runs": len(runs),
        "errors": errors,
        "output": outputs[-1] if outputs else "",
        "seconds": statistics.median(seconds) if seconds else 0.0,
    }


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def report(info: dict, results: dict, repeats: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run_all.py` "
        f"({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} "
        f"UTC). Each benchmark ran {repeats} times as its own process; the "
        "table gives the median of each figure over the runs (most scripts "
        "already report a median over their own steps). Targets are those "
        "of SPEC.md section 4. Timings depend on the load of the machine: "
        "see the load average below.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "",
        "## Results (medians)",
        "",
        "| benchmark | figure | median | runs |",
        "|---|---|---:|---:|",
    ]
    for name, result in results.items():
        if not result["medians"]:
            lines.append(f"| {name} | FAILED | - | 0 |")
        for key, value in result["medians"].items():
            lines.append(
                f"| {name} | {key} | {_fmt(value)} | {result['runs']} |"
            )
    lines += ["", "## Commands", ""]
    for bench in BENCHMARKS:
        if bench.name in results:
            args = " ".join(bench.args)
            lines.append(
                f"- {bench.name}: `python benchmarks/{bench.script} {args}`"
                f" (median {results[bench.name]['seconds']:.0f} s per run)"
            )
    failures = {n: r["errors"] for n, r in results.items() if r["errors"]}
    if failures:
        lines += ["", "## Failures", ""]
        for name, errors in failures.items():
            lines += [f"- {name}: {e}" for e in errors]
    lines += ["", "## Last run's output", ""]
    for name, result in results.items():
        lines += [
            f"### {name}",
            "",
            "```",
            result["output"].rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="Comma list of names.")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    info = machine()
    results = {}
    for bench in BENCHMARKS:
        if only and not any(bench.name.startswith(o) for o in only):
            continue
        if not os.path.exists(os.path.join(ROOT, "benchmarks", bench.script)):
            continue
        print(f"running {bench.name} x{args.repeats} ...", flush=True)
        results[bench.name] = run_benchmark(bench, args.repeats)
        for key, value in results[bench.name]["medians"].items():
            print(f"  {key}: {_fmt(value)}", flush=True)
        for error in results[bench.name]["errors"]:
            print(f"  error: {error}", flush=True)
    with open(args.out, "w") as f:
        f.write(report(info, results, args.repeats))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
