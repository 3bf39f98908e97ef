#!/usr/bin/env bash
# Is the demo reproducible on this machine? Runs `t2t-mm-demo` twice with
# the same seed and settings (demo.gin plus any extra arguments, e.g.
# --steps=100 for a quick check) into OUT/run1 and OUT/run2, the second
# reusing the first one's generated data, and compares every figure the two
# wrote: the trainer's dev evaluations, the export's scores on the whole dev
# splits (with their baselines, checks and decoded samples) and the final
# weights, bit for bit. Exits 1 on any difference.
#
#   scripts/demo_reproducible.sh OUT [t2t-mm-demo arguments ...]
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 OUT [t2t-mm-demo arguments ...]" >&2
  exit 2
fi
out="$1"
shift
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
mkdir -p "$out/run2"
python3 bin/t2t-mm-demo --out="$out/run1" "$@"
# The same data: the second run skips datagen.
ln -sfn "$(cd "$out/run1" && pwd)/data" "$out/run2/data"
python3 bin/t2t-mm-demo --out="$out/run2" "$@"
python3 -m programs.demo_compare "$out/run1" "$out/run2"
