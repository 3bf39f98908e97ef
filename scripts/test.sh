#!/usr/bin/env bash
# Runs ruff and the default test suite. pytest's exit status 5 ("no tests
# collected") is not a failure; every other non-zero status is.
set -uo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
ruff check . || exit 1
python3 -m pytest -q "$@" tests
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"
