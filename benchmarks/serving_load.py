"""Serving under load: RSS before and after a stream of requests.

Exports the random tiny MultiModel of tests/decoding/tiny.py (four
signatures: text, image class, caption, speech), then sends `--requests`
single requests round-robin over the signatures (mixed lengths), and
reports the process's resident memory (RSS, from /proc/self/status) after a
warm-up of 100 requests and at the end, plus the growth per request.

  python benchmarks/serving_load.py [--requests=1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from t2t_multimodel.serving import served_model  # noqa: E402
from tests.decoding import tiny  # noqa: E402
from tests.reliability import serving_fixture  # noqa: E402

INPUTS = {
    "tiny_translate": "inputs",
    "tiny_image": "image_bytes",
    "tiny_caption": "image_bytes",
    "tiny_speech": "audio_bytes",
}


def rss_mib() -> float:
    """The resident set size of this process in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def request(name: str, i: int) -> bytes | str:
    """Request `i` of signature `name`, of a length varying with `i`."""
    if name == "tiny_translate":
        words = " ".join(tiny.TEXTS).split()
        return " ".join(words[j % len(words)] for j in range(1 + i % 40))
    if name == "tiny_speech":
        return tiny.wav(i, 0.05 + 0.01 * (i % 30))
    return tiny.png(i, (4 + i % 20, 3 + i % 17), gray=i % 2 == 0)


def run(served, requests: int, warmup: int = 100) -> dict[str, float]:
    names = sorted(INPUTS)
    before = None
    start = time.monotonic()
    for i in range(warmup + requests):
        if i == warmup:
            before, start = rss_mib(), time.monotonic()
        name = names[i % len(names)]
        value = np.array([request(name, i)], dtype=object)
        served.run(name, {INPUTS[name]: value})
    after = rss_mib()
    return {
        "rss_before_mib": before,
        "rss_after_mib": after,
        "growth_kib_per_request": (after - before) * 1024 / requests,
        "requests_per_second": requests / (time.monotonic() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        served = served_model.ServedModel(
            serving_fixture.export_tiny(directory)
        )
        result = run(served, args.requests)
    print(
        f"{args.requests} requests: RSS {result['rss_before_mib']:.1f} MiB "
        f"after 100 warm-up requests -> {result['rss_after_mib']:.1f} MiB "
        f"({result['growth_kib_per_request']:+.2f} KiB/request), "
        f"{result['requests_per_second']:.1f} requests/s"
    )


if __name__ == "__main__":
    main()
