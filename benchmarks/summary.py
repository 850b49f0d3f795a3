"""The README's speed table, from a run's JSON (``results/latest.json`` by default).

    python3 benchmarks/summary.py [results/latest.json]

One line per row: the ceiling's and pynetdicom's rates, aiodimse's on both event
loops with their ratios, and the verdicts that ``run.py`` printed for the row's target.
Printed, for pasting into the README, so that the table there is the run's own.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import NO_REPLY, RESULTS, Outcome, Row, build_rows, judged, target_verdicts

# The rows the README shows, with their labels there (rows 2a/2b, 1b are left out:
# run.py judges only 2c of row 2, and _verdicts pairs its verdicts with contenders).
LABELS = {
    "1a": "1a sequential N-ACTION, 1 instance",
    "1c": "1c sequential N-ACTION, 1000 instances",
    "1d": "1d sequential C-ECHO",
    "2c": "2c handler reads 1000 instances",
    "3": "3 associate + release",
    "4": "4 10 associations, window 8",
    "5a": "5a 100 associations x 20",
    "5b": "5b 1000 associations x 20",
    "6": "6 10,000 idle associations",
    "7a": "7a our SCU vs raw generator, N-ACTION",
    "7b": "7b our SCU vs raw generator, C-ECHO",
    "8a": "8a N-ACTION + same Action Reply, 1 association",
    "8b": "8b N-ACTION + same Action Reply, 10 associations",
    "8c": "8c N-ACTION + same Action Reply, 100 x 20",
    "8d": "8d N-ACTION + new Action Reply, 1 association",
    "8e": "8e N-ACTION + new Action Reply, 10 associations",
    "8f": "8f N-ACTION + new Action Reply, 100 x 20",
    "8g": "8g N-GET 20 attributes, 1 association",
    "8h": "8h N-GET 20 attributes, 10 associations",
    "8i": "8i N-GET 20 attributes, 100 x 20",
    "8j": "8j N-CREATE + created attributes, 1 association",
    "8k": "8k N-CREATE + created attributes, 10 associations",
    "8l": "8l N-CREATE + created attributes, 100 x 20",
}


def _rate(summary: dict[str, Any]) -> str:
    rate = summary.get("rate")
    if not summary.get("runs") or rate is None or math.isnan(rate):
        return "-"
    bound = " (load-bound)" if summary.get("gen_cpu_pct", 0) >= 90 else ""
    return f"{rate:,.0f}{bound}" if rate >= 100 else f"{rate:,.1f}{bound}"


def _with_ratio(summary: dict[str, Any], base: dict[str, Any], unit: str = "x") -> str:
    text = _rate(summary)
    rate, ref = summary.get("rate"), base.get("rate")
    if text == "-" or not ref or rate is None:
        return text
    return f"{text} ({rate / ref:.2f}{unit})"


def _idle(summary: dict[str, Any], n: int) -> str:
    if not summary.get("runs"):
        return "-"
    return (f"{summary['established']:.0f}/{n} up, {summary['answering']:.0f} answering, "
            f"{summary['kb_per_assoc']:.1f} kB each, {summary['idle_cpu_pct']:.1f} % idle CPU")


def _verdicts(row: Row, outcomes: dict[tuple[str, str], Outcome]) -> str:
    """run.py's verdicts, one word per event loop: "asyncio met, uvloop MISSED"."""
    names = [c.name for c in row.contenders if judged(c)
             and outcomes.get((row.id, c.name)) is not None
             and outcomes[(row.id, c.name)].summary.get("runs")]
    words = []
    for name, verdict in zip(names, target_verdicts(row, outcomes), strict=True):
        loop = "uvloop" if "uvloop" in name else "asyncio"
        words.append(f"{loop} {'MISSED' if 'MISSED' in verdict else 'met'}")
    return ", ".join(words) or "-"


def reply_cpu(row: Row, outcomes: dict[tuple[str, str], Outcome]) -> str:
    """Row 8's server CPU per request, with and without the reply, on both loops."""
    summ = {name: o.summary for (rid, name), o in outcomes.items() if rid == row.id}

    def cpu(name: str) -> str:
        value = summ.get(name, {}).get("server_cpu_us_per_op")
        return "-" if value is None or math.isnan(value) else f"{value:.0f}"

    cells = [f"{cpu(n)} / {cpu(n + NO_REPLY)}" for n in ("aiodimse", "aiodimse-uvloop")]
    return f"| {LABELS[row.id]} | {cpu('ceiling')} | " + " | ".join(cells) + " |"


def line(row: Row, outcomes: dict[tuple[str, str], Outcome]) -> str:
    summ = {name: o.summary for (rid, name), o in outcomes.items() if rid == row.id}
    verdicts = _verdicts(row, outcomes)
    if row.spec.mode == "idle":
        n = row.spec.n_assoc
        cells = [_idle(summ.get("ceiling", {}), n), _idle(summ.get("pynetdicom", {}), n),
                 _idle(summ.get("aiodimse", {}), n), _idle(summ.get("aiodimse-uvloop", {}), n)]
    elif row.id.startswith("7"):
        gen = summ.get("raw generator", {})
        cells = [_rate(gen) + " (generator)", _rate(summ.get("pynetdicom SCU", {})) + " (SCU)",
                 _with_ratio(summ.get("aiodimse SCU", {}), gen),
                 _with_ratio(summ.get("aiodimse SCU uvloop", {}), gen)]
    elif row.id.startswith("2"):
        ref = summ.get(row.ref, {})
        cells = ["-", _rate(ref),
                 _with_ratio(summ.get("aiodimse read-all", {}), ref, "x pynetdicom"),
                 _with_ratio(summ.get("aiodimse-uvloop read-all", {}), ref, "x pynetdicom")]
    else:
        cells = [_rate(summ.get("ceiling", {})), _rate(summ.get("pynetdicom+nodelay", {})),
                 _with_ratio(summ.get("aiodimse", {}), summ.get("ceiling", {})),
                 _with_ratio(summ.get("aiodimse-uvloop", {}), summ.get("ceiling-uvloop", {}))]
    return f"| {LABELS[row.id]} | " + " | ".join(cells) + f" | {verdicts} |"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else RESULTS / "latest.json"
    data = json.loads(path.read_text())
    outcomes = {
        (o["row"], o["contender"]): Outcome(o["row"], o["contender"], o["runs"], o["na"],
                                            o["summary"])
        for o in data["outcomes"]
    }
    rows = [r for r in build_rows(bool(data.get("quick"))) if r.id in LABELS]
    print("| row | ceiling (asyncio) | pynetdicom (TCP_NODELAY) | aiodimse | aiodimse + uvloop"
          " | target (0.7x ceiling; 2c 10x pynetdicom; 7 0.5x) |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        if any(rid == row.id for rid, _name in outcomes):
            print(line(row, outcomes))
    replies = [r for r in rows if r.id.startswith("8") and any(rid == r.id for rid, _ in outcomes)]
    if replies:
        print()
        print("| row 8: server CPU us/request | ceiling | aiodimse reply / no reply"
              " | aiodimse + uvloop reply / no reply |")
        print("| --- | ---: | ---: | ---: |")
        for row in replies:
            print(reply_cpu(row, outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
