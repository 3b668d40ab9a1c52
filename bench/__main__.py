"""Run every ``bench/bench_*.py`` (or those named on the command line) and collect results.

Each module exposes ``run() -> list[dict]``; every dict is one measurement with at least
``name``, ``seconds`` and, where measured, ``peak_rss_mb``, ``target`` and ``reference``.
Results go to bench/results/<module>.json and a summary table is printed.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if wanted:
        modules = [m for m in modules if m in wanted or m.removeprefix("bench_") in wanted]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    rows = []
    for name in modules:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        results = module.run()
        (out / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
        rows.extend(results)
        for r in results:
            print("   " + "  ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
