"""Sample a running process with py-spy and summarise where its main thread spent the time.

Not a section. py-spy runs `--nonblocking` (it never pauses the target) at 100 Hz with idle
samples kept, so the summary shows waiting as well as work.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE_HZ = 100
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")
IDLE = re.compile(r"^\w*Selector\.select \(selectors\.py")  # the loop waiting for I/O

# (label, function, file suffix, indent): inclusive share of the steps' named parts.
WORKER_ROWS = [
    ("incident step `IncidentSteps.on_event`", "on_event", "stream/incidents.py", 0),
    ("decode and validate the event", "decode_event", "stream/codecs.py", 1),
    ("read the record (`IncidentStore.load`)", "load", "stream/state.py", 1),
    ("parse the record (`IncidentRecord.from_bytes`)", "from_bytes", "stream/state.py", 2),
    ("engine `apply`", "apply", "core/engine.py", 1),
    ("write the record (`IncidentStore.save`)", "save", "stream/state.py", 1),
    ("serialise the record (`IncidentRecord.to_bytes`)", "to_bytes", "stream/state.py", 2),
    (
        "Faust table set (RocksDB put, changelog send)",
        "__setitem__",
        "mode/utils/collections.py",
        2,
    ),
    ("publish alerts and outcomes (`Publisher.effects`)", "effects", "stream/publish.py", 1),
    ("tick step `IncidentSteps.on_tick`", "on_tick", "stream/incidents.py", 0),
    ("engine `advance`", "advance", "core/engine.py", 1),
    ("read and write the record", "_commit", "stream/incidents.py", 1),
    ("rollup step `Rollups.on_outcomes`", "on_outcomes", "stream/rollups.py", 0),
    ("decode the hour bucket (`Bucket.from_bytes`)", "from_bytes", "analytics/adherence.py", 1),
    ("encode the hour bucket (`Bucket.to_bytes`)", "to_bytes", "analytics/adherence.py", 1),
    (
        "Faust table set (RocksDB put, changelog send)",
        "__setitem__",
        "mode/utils/collections.py",
        1,
    ),
    ("due-index build (`IncidentStore.build_index`)", "build_index", "stream/state.py", 0),
]


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy attached to one pid from `attach` to `stop`; `summary` renders markdown."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""

    def attach(self, pid: int) -> None:
        exe = py_spy()
        if exe is None:
            self.error = "py-spy is not installed (it is in the dev extras)"
            return
        args = [exe, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nonblocking"]
        args += ["--idle", "--threads", "--format", "raw", "--output", str(self.out)]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        if not self.out.exists():
            self.error = out.decode(errors="replace")[-500:]

    def stacks(self) -> Counter[tuple[str, ...]]:
        """Main-thread stacks (outermost first) and their sample counts."""
        stacks: Counter[tuple[str, ...]] = Counter()
        with contextlib.suppress(FileNotFoundError):
            for line in self.out.read_text().splitlines():
                frames, _, count = line.rpartition(" ")
                parts = frames.split(";")
                if not parts or "MainThread" not in parts[0]:
                    continue
                stacks[tuple(parts[1:])] += int(count)
        return stacks

    def share(self, func: str, suffix: str) -> float:
        """Fraction of all samples whose stack passes through `func` in a file ending `suffix`."""
        stacks = self.stacks()
        total = sum(stacks.values())
        hit = sum(c for s, c in stacks.items() if any(_is(f, func, suffix) for f in s))
        return hit / total if total else 0.0

    def share_in(self, file_part: str, root: tuple[str, str]) -> float:
        """Fraction of the samples under `root` (function, file suffix) that pass through any
        frame of a file whose path contains `file_part`."""
        under = [(s, c) for s, c in self.stacks().items() if any(_is(f, *root) for f in s)]
        total = sum(c for _, c in under)
        hit = sum(c for s, c in under if any(file_part in f for f in s))
        return hit / total if total else 0.0

    def summary(self, what: str, rows: list[tuple[str, str, str, int]] = WORKER_ROWS) -> str:
        stacks = self.stacks()
        total = sum(stacks.values())
        if not total:
            return f"Profile of {what}: none recorded. {self.error}".strip()
        idle = sum(n for s, n in stacks.items() if s and IDLE.match(s[-1]))
        lines = [
            f"**Profile** of {what}: py-spy, {RATE_HZ} Hz, non-blocking, main thread, "
            f"{total:,} samples; waiting in the event loop's `select` {idle / total:.0%}.",
            "",
            "| part (inclusive) | share of samples |",
            "|---|---:|",
        ]
        named = list(rows)
        parents: list[tuple[str, str]] = []
        for label, func, suffix, indent in named:
            del parents[indent:]
            chain = [*parents, (func, suffix)]
            n = sum(c for s, c in stacks.items() if _under(s, chain))
            parents.append((func, suffix))
            if n:  # a part the process never reached says nothing
                share = f"{n / total:.1%}" if n / total >= 0.001 else "< 0.1%"
                lines.append(f"| {'&nbsp;&nbsp;' * 2 * indent}{label} | {share} |")
        tops = [(func, suffix) for _, func, suffix, indent in named if indent == 0]
        outside = sum(
            c
            for s, c in stacks.items()
            if not (s and IDLE.match(s[-1]))
            and not any(_is(f, func, suffix) for f in s for func, suffix in tops)
        )
        lines.append(
            f"| Faust, aiokafka and asyncio outside the steps (busy) | {outside / total:.1%} |"
        )
        logging = sum(c for s, c in stacks.items() if any("(logging/__init__.py" in f for f in s))
        lines += ["", f"Building and handling log records: {logging / total:.1%} of samples."]
        lines += ["", "Busiest leaf functions (self time, busy samples only):", ""]
        lines += ["| function | file | share |", "|---|---|---:|"]
        leaves: Counter[tuple[str, str]] = Counter()
        for s, c in stacks.items():
            if s and not IDLE.match(s[-1]):
                m = FRAME.match(s[-1])
                leaves[(m["func"], m["file"]) if m else (s[-1], "")] += c
        for (func, file), c in leaves.most_common(12):
            lines.append(f"| `{func}` | {_short(file)} | {c / total:.1%} |")
        return "\n".join(lines)


def _under(stack: tuple[str, ...], chain: list[tuple[str, str]]) -> bool:
    """Whether the stack passes through each (function, file) of `chain`, outermost first."""
    at = 0
    for func, suffix in chain:
        while at < len(stack) and not _is(stack[at], func, suffix):
            at += 1
        if at == len(stack):
            return False
        at += 1
    return True


def _is(frame: str, func: str, suffix: str) -> bool:
    m = FRAME.match(frame)
    if m is None:
        return False
    name = m["func"].rsplit(".", 1)[-1]
    return name == func and m["file"].endswith(suffix)


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def functions_under(
    profiler: Profiler, root: tuple[str, str], package: str = "sla_stream/", count: int = 15
) -> str:
    """Markdown: where the samples below `root` (function, file suffix) went, by the package's
    functions (inclusive, each counted once per sample) and by leaf (self time)."""
    stacks = {s: c for s, c in profiler.stacks().items() if any(_is(f, *root) for f in s)}
    total = sum(stacks.values())
    if not total:
        return f"Profile: none recorded under `{root[0]}`. {profiler.error}".strip()
    inclusive: Counter[tuple[str, str]] = Counter()
    leaves: Counter[tuple[str, str]] = Counter()
    for stack, c in stacks.items():
        seen = set()
        for frame in stack:
            m = FRAME.match(frame)
            if m and package in m["file"]:
                seen.add((m["func"], _short(m["file"])))
        for key in seen:
            inclusive[key] += c
        m = FRAME.match(stack[-1])
        leaves[(m["func"], _short(m["file"])) if m else (stack[-1], "")] += c
    lines = [
        f"**Profile** under `{root[0]}`: py-spy, {RATE_HZ} Hz, {total:,} samples.",
        "",
        "| function (inclusive) | file | share |",
        "|---|---|---:|",
    ]
    for (func, file), c in inclusive.most_common(count):
        lines.append(f"| `{func}` | {_package_path(file, package)} | {c / total:.1%} |")
    lines += ["", "| leaf function (self time) | file | share |", "|---|---|---:|"]
    for (func, file), c in leaves.most_common(count):
        lines.append(f"| `{func}` | {_package_path(file, package)} | {c / total:.1%} |")
    return "\n".join(lines)


def _package_path(file: str, package: str) -> str:
    return package + file.split(package, 1)[1] if package in file else file
