#!/usr/bin/env bash
# README command 1 (after scripts/setup.sh): the offline demo with its
# defaults (gin/experiments/demo.gin): data, joint training, evaluation,
# export and report into runs/demo. Idempotent: a rerun resumes (datagen
# skips complete data, training continues from the last checkpoint, a
# finished run only reports again). Extra arguments go to t2t-mm-demo, e.g.
#   scripts/demo.sh --steps=6000 --out=runs/demo_long
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
exec python3 bin/t2t-mm-demo "$@"
