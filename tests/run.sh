#!/usr/bin/env bash
# The test command of the README: installs what the tests need into the project's
# virtual environment (.venv, made here if missing: the system Pythons of Debian 12
# and Ubuntu 24.04 refuse pip installs outside one), then lints, type-checks and
# runs the whole suite; then runs the whole suite again on every other supported
# Python found on the machine. Safe to run again; works as root or not.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED="3.10 3.11 3.12 3.13"  # keep in step with pyproject.toml's classifiers

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The project's environment: python3 -m venv needs Debian's python3-venv package.
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if can_apt; then
            apt_install python3-venv
            python3 -m venv .venv
        else
            echo "python3 cannot make a virtual environment: install its venv module" \
                 "(Debian, Ubuntu: apt-get install python3-venv) and run this again" >&2
            exit 1
        fi
    fi
fi
PY=.venv/bin/python
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test,dev,speed,docs,postgresql]'

# DCMTK is an interop peer (echoscu, storescp). pynetdicom installs Python scripts of
# the same names, so a DCMTK tool is a compiled program (tests/dcmtk_tools.py looks
# the same way): on PATH, in $DCMTK_BIN or in /usr/bin. Installed where we can.
dcmtk_found() {
    local dir
    for dir in ${DCMTK_BIN:-} ${PATH//:/ } /usr/bin /usr/local/bin; do
        if [ -x "$dir/echoscu" ] && [ "$(head -c 4 "$dir/echoscu" | tr -d '\0')" = $'\x7fELF' ]
        then
            return 0
        fi
    done
    return 1
}
if ! dcmtk_found; then
    if can_apt; then
        apt_install dcmtk
    else
        echo "DCMTK (echoscu, storescp) is missing: install it (apt-get install dcmtk)," \
             "or set DCMTK_BIN to the folder holding its programs" >&2
        exit 1
    fi
fi

# PostgreSQL: the store tests start a private cluster of their own (tests/store/
# pg_cluster.py: initdb + pg_ctl as an unprivileged user on a loopback port), from
# the server programs of the distribution's package. Installed where we can.
pg_found() {
    local dir
    for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            return 0
        fi
    done
    return 1
}
if ! pg_found; then
    if can_apt; then
        apt_install postgresql
    else
        echo "PostgreSQL is missing: the PostgreSQL store tests will be skipped" \
             "(apt-get install postgresql)" >&2
    fi
fi

# Network namespaces: the multi-node tests put each serve node in one of its own
# (tests/cli/netns.py, ip netns + veth pairs) when run as root; here they must
# (AIODIMSE_NETNS=required: a failure, not loopback, if they cannot be made).
if [ "$(id -u)" = 0 ]; then
    command -v ip >/dev/null 2>&1 || { ! can_apt || apt_install iproute2; }
    export AIODIMSE_NETNS=required
fi

"$PY" -m ruff check aiodimse tests benchmarks
"$PY" -m mypy --strict aiodimse  # as Python 3.10 (pyproject.toml): no newer APIs
for v in $SUPPORTED; do  # and the branches each newer version takes
    [ "$v" = 3.10 ] || "$PY" -m mypy --strict --python-version "$v" aiodimse
done
# The other supported Pythons (tests/other_pythons.sh: the whole suite on each, in a
# venv of its own) run beside this one's suite: a suite keeps about one core busy
# and waits on sockets and subprocesses for the rest, so on a 2-core machine the
# others fill the second core instead of following one by one. Their output is
# printed whole at the end; any failure, here or there, fails the run.
others_log="$(mktemp)"
SUPPORTED="$SUPPORTED" DEFAULT_PYTHON="$PY" bash tests/other_pythons.sh "$@" \
    >"$others_log" 2>&1 &
others=$!
trap 'kill "$others" 2>/dev/null || true' EXIT
failed=0
"$PY" -m pytest "$@" || failed=1

# The documentation site, warnings as errors (the README's command): its status and
# state tables are rendered from the code, its API pages from the docstrings.
"$PY" -m sphinx -W --keep-going -q -b html docs "$(mktemp -d)/html" || failed=1

# Once more with every cache off (aiodimse/caches.py, docs/internals.md "Caches"):
# the service, interop and acceptance tests must pass unchanged (under a minute).
AIODIMSE_CACHES=0 "$PY" -m pytest -q -p no:cacheprovider \
    tests/services tests/interop tests/aio/test_services.py tests/aio/test_association.py \
    tests/aio/test_concurrency.py tests/aio/test_caches.py tests/cli/test_serve_pynetdicom.py \
    tests/cli/test_serve_dcmtk.py tests/cli/test_serve_commitment.py || failed=1

others_status=0
wait "$others" || others_status=$?
trap - EXIT
cat "$others_log"
rm -f "$others_log"
[ "$others_status" = 0 ] || failed=1
exit "$failed"
