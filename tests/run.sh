#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then lints,
# type-checks and runs the whole suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test,dev,speed]'

# DCMTK is an interop peer (echoscu, storescp); install it where we can. pynetdicom
# installs console scripts of the same names, so look for DCMTK's own binary.
if [ ! -x /usr/bin/echoscu ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk >/dev/null
    else
        echo "DCMTK (/usr/bin/echoscu) is missing and cannot be installed without root apt-get" >&2
        exit 1
    fi
fi

python3 -m ruff check aiodimse tests benchmarks
python3 -m mypy --strict aiodimse
python3 -m pytest "$@"
