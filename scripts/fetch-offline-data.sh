#!/usr/bin/env bash
# Fetches the offline demo data that ships inside PyPI packages (see
# problems/demo_parse.py): the allennlp 0.9.0 wheel, whose test fixtures hold
# gold parse trees. The wheel is only downloaded, never installed or imported.
# Idempotent: a second run finds the wheel and downloads nothing.
set -euo pipefail

cache_dir="${T2T_MM_CACHE:-$HOME/.cache/t2t_multimodel}"
wheel="$cache_dir/allennlp-0.9.0-py3-none-any.whl"

if [ -s "$wheel" ] && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).testzip()' "$wheel" 2>/dev/null; then
  exit 0
fi
mkdir -p "$cache_dir"
echo "fetch-offline-data: downloading allennlp==0.9.0 (wheel only) to $cache_dir"
python3 -m pip download -q --disable-pip-version-check --no-deps \
  --only-binary=:all: allennlp==0.9.0 -d "$cache_dir"
