"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, print
one table, write ``bench/results.json`` (a list of ``{"name", "value",
"unit", "target", "ok", "note"}``; ``ok`` is null for figures without a
target). Exit status 1 when any target is missed."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from . import (  # noqa: E402
    campaign_delete,
    campaign_lanes,
    campaigns,
    cluster,
    intake,
    lanes,
    latency,
    memory,
    metrics_cost,
    pacing,
    throughput,
)
from .harness import Result  # noqa: E402

BENCHMARKS = {"intake": intake, "throughput": throughput, "latency": latency, "lanes": lanes, "pacing": pacing,
              "memory": memory, "metrics": metrics_cost, "campaigns": campaigns, "campaign-lanes": campaign_lanes,
              "campaign-delete": campaign_delete, "cluster": cluster}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")


def table(results: list[Result]) -> str:
    rows = [("figure", "value", "unit", "target", "ok")]
    for r in results:
        rows.append((r.name, "%g" % r.value, r.unit, r.target, "-" if r.ok is None else ("yes" if r.ok else "NO")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    args = parser.parse_args()
    results: list[Result] = []
    started = time.monotonic()
    for name in args.only:
        print("%s ..." % name, file=sys.stderr)
        t0 = time.monotonic()
        try:
            results.extend(BENCHMARKS[name].run(args.quick))
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print("%s failed: %s" % (name, exc), file=sys.stderr)
            results.append(Result("%s benchmark" % name, float("nan"), "", "completes", False, str(exc)[:300]))
        print("%s: %.0fs" % (name, time.monotonic() - t0), file=sys.stderr)
    with open(RESULTS, "w", encoding="utf-8") as fh:
        json.dump([r.as_dict() for r in results], fh, indent=1)
    print(table(results))
    missed = [r.name for r in results if r.ok is False]
    print("\n%s run, %.0fs on %d CPUs; %d target(s) missed; written %s" % (
        "quick" if args.quick else "full", time.monotonic() - started, len(os.sched_getaffinity(0)), len(missed),
        RESULTS))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
