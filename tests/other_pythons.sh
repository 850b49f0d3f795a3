#!/usr/bin/env bash
# Part of tests/run.sh: the whole suite (or the pytest arguments given) on every
# supported Python on this machine other than the default python3, each in a venv
# kept outside the tree (${XDG_CACHE_HOME:-~/.cache}/aiodimse-ci/venv-3.X, made
# once, reinstalled when pyproject.toml or the checkout changes). One line per
# version, found or missing; a missing one is not a failure, any failing one is.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED="${SUPPORTED:-3.10 3.11 3.12 3.13}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/aiodimse-ci"
version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
default="$(version_of "${DEFAULT_PYTHON:-python3}")"

# An interpreter that really is Python $1: pyenv's versions first (newest patch),
# then python3.X on PATH (a pyenv shim for a version not selected fails the check).
find_python() {
    local root candidate
    root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
    for candidate in $(ls -d "$root/versions/$1".*/bin/python3 2>/dev/null | sort -V -r) \
                     "$(command -v "python$1" 2>/dev/null || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(version_of "$candidate")" = "$1" ]
        then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Each version's venv is made (pip, one after the other), then its suite started at
# once in the background, at most $PARALLEL at a time (default 3: all the others,
# beside the main run of tests/run.sh). A suite keeps about one core busy and spends
# the rest waiting on sockets, subprocesses and timers. Each suite's output is
# printed whole when it ends.
PARALLEL="${PARALLEL:-3}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
declare -A job_version=()
failed=""
finish_one() {  # waits for one suite to end, prints its output, records a failure
    local pid rc=0 v
    wait -n -p pid || rc=$?
    v="${job_version[$pid]}"
    unset "job_version[$pid]"
    echo "===== python $v: the whole suite (exit status $rc) ====="
    cat "$logs/$v.log"
    [ "$rc" = 0 ] || failed="$failed $v"
}
for v in $SUPPORTED; do
    if [ "$v" = "$default" ]; then
        echo "python $v: the default python3, tested above"
        continue
    fi
    if ! py="$(find_python "$v")"; then
        echo "python $v: not found on this machine, skipped"
        continue
    fi
    echo "python $v: $py"
    venv="$CACHE/venv-$v"
    if [ "$(version_of "$venv/bin/python" || true)" != "$v" ]; then
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi
    stamp="$PWD $(sha256sum pyproject.toml | cut -c1-16) $py"
    if [ "$(cat "$venv/.aiodimse-installed" 2>/dev/null || true)" != "$stamp" ]; then
        "$venv/bin/python" -m pip install -qq --disable-pip-version-check -e '.[test,speed,docs,postgresql]'
        echo "$stamp" > "$venv/.aiodimse-installed"
    fi
    while [ "${#job_version[@]}" -ge "$PARALLEL" ]; do finish_one; done
    # PYTHONPATH: this checkout's code, whatever another checkout installed last.
    # A tenth of each property test's examples (tests/examples.py says why).
    AIODIMSE_EXAMPLES_PERCENT="${AIODIMSE_EXAMPLES_PERCENT:-10}" PYTHONPATH="$PWD" \
        "$venv/bin/python" -m pytest -p no:cacheprovider "$@" >"$logs/$v.log" 2>&1 &
    job_version[$!]="$v"
done
while [ "${#job_version[@]}" -gt 0 ]; do finish_one; done
if [ -n "$failed" ]; then
    echo "the suite failed on python$failed" >&2
    exit 1
fi
