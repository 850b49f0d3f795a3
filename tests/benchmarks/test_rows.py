"""benchmarks/run.py's plan: every scenario of the issue, and the run counts promised."""

from __future__ import annotations

from benchmarks.run import build_rows


def test_the_full_run_has_every_row_with_at_least_three_runs() -> None:
    rows = {row.id: row for row in build_rows(quick=False)}
    assert {"1a", "1b", "1c", "1d", "2c", "3", "4", "5a", "5b", "6", "7a", "7b"} <= set(rows)
    # the issue: every contender, median of at least 3 runs
    assert all(row.runs_of(c) >= 3 for row in rows.values() for c in row.contenders)
    assert rows["5a"].runs == 9  # its runs last tens of milliseconds
    # one association, sequential: five runs (row 7's three clients: seven)
    for row_id, most in (("1a", 5), ("1b", 5), ("1c", 5), ("1d", 5), ("7a", 7), ("7b", 7)):
        row = rows[row_id]
        runs = {c.name: row.runs_of(c) for c in row.contenders}
        assert row.runs == most and all(n == (3 if name.startswith("pynetdicom") else most)
                                        for name, n in runs.items()), (row_id, runs)


def test_quick_mode_runs_every_row_once_and_shorter() -> None:
    full = {row.id: row for row in build_rows(quick=False)}
    quick = {row.id: row for row in build_rows(quick=True)}
    assert quick.keys() == full.keys()
    assert all(row.runs_of(c) == 1 for row in quick.values() for c in row.contenders)
    assert all(quick[i].spec.duration <= full[i].spec.duration for i in quick)


def test_pynetdicom_alone_gets_the_shorter_caps_in_rows_5_and_6() -> None:
    rows = {row.id: row for row in build_rows(quick=False)}
    for row_id in ("5a", "5b", "6"):
        row = rows[row_id]
        for c in row.contenders:
            spec = row.spec_of(c)
            if c.name.startswith("pynetdicom"):
                assert spec.setup_timeout == 15.0 < row.spec.setup_timeout, row_id
                assert spec.duration <= 10.0
                assert spec.n_assoc == row.spec.n_assoc
            else:
                assert spec == row.spec, (row_id, c.name)
    one = rows["1a"]
    assert all(one.spec_of(c) == one.spec for c in one.contenders)


def test_row_8_has_each_reply_at_1_10_and_100_associations_beside_its_baseline() -> None:
    rows = {row.id: row for row in build_rows(quick=False) if row.id.startswith("8")}
    assert sorted(rows) == [f"8{c}" for c in "abcdefghijkl"]
    for row in rows.values():
        names = {c.name for c in row.contenders}
        assert {"ceiling", "pynetdicom+nodelay", "aiodimse", "aiodimse no reply"} <= names
        assert all(row.runs_of(c) >= 3 for c in row.contenders)
        by_name = {c.name: c for c in row.contenders}
        reply, plain = by_name["aiodimse"].args, by_name["aiodimse no reply"].args
        assert reply[:-1] == plain[:-1] and reply[-1] != plain[-1]  # only --replies differs
    assert [rows[i].spec.n_assoc for i in ["8a", "8b", "8c"]] == [1, 10, 100]
    assert rows["8b"].spec.window == 8 and rows["8c"].isolated
    assert {rows[i].spec.op for i in ("8a", "8d", "8g", "8j")} == {"naction", "nget", "ncreate"}
    assert "0.6x ceiling" in rows["8g"].target and "0.6x" not in rows["8a"].target
