#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then lints,
# type-checks and runs the whole suite; then runs the whole suite again on every
# other supported Python found on the machine. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED="3.10 3.11 3.12 3.13"  # keep in step with pyproject.toml's classifiers

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
python3 -m mypy --strict aiodimse  # as Python 3.10 (pyproject.toml): no newer APIs
for v in $SUPPORTED; do  # and the branches each newer version takes
    [ "$v" = 3.10 ] || python3 -m mypy --strict --python-version "$v" aiodimse
done
python3 -m pytest "$@"

# The other supported Pythons: the whole suite on each, in a venv of its own.
SUPPORTED="$SUPPORTED" exec bash tests/other_pythons.sh "$@"
