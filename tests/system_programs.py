"""The system programs the suite drives, and the one place that decides what happens without them.

`make test` runs `python -m tests.system_programs` first: where a program is missing and the
machine can install it (root, with Debian's apt-get), it is installed (`apt-get update` first;
the ops packages without recommends, so docker-compose brings no container engine). Where it
cannot, the tests that need the program skip, each with one line naming what to install, and
the run ends with one line listing them all. CI sets `SLA_REQUIRE_SYSTEM_PROGRAMS=1`, under
which such a test fails instead: CI proves everything or says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REQUIRE_VARIABLE = "SLA_REQUIRE_SYSTEM_PROGRAMS"
SKIP_PREFIX = "system program missing:"


@dataclass(frozen=True)
class SystemProgram:
    """A program a test runs, and the Debian package that ships it."""

    name: str
    package: str
    recommends: bool = False  # Chromium needs its recommended fonts and libraries

    def path(self) -> str | None:
        found = shutil.which(self.name)
        if found is None and Path(f"/usr/bin/{self.name}").exists():  # not on a root-less PATH
            found = f"/usr/bin/{self.name}"
        return found

    @property
    def install_hint(self) -> str:
        flag = "" if self.recommends else "--no-install-recommends "
        return f"apt-get install {flag}{self.package}"


@dataclass(frozen=True)
class SystemLibrary(SystemProgram):
    """A shared library a Python package loads (found by the dynamic loader's own search)."""

    def path(self) -> str | None:
        import ctypes.util

        return ctypes.util.find_library(self.name)


OPENMP = SystemLibrary("gomp", "libgomp1")  # LightGBM's wheel links against it (the forecast)

PROGRAMS = {
    p.name: p
    for p in (
        SystemProgram("chromium", "chromium", recommends=True),  # the dashboard browser test
        SystemProgram("chromedriver", "chromium-driver", recommends=True),
        SystemProgram("prometheus", "prometheus"),
        SystemProgram("promtool", "prometheus"),
        SystemProgram("prometheus-alertmanager", "prometheus-alertmanager"),
        SystemProgram("amtool", "prometheus-alertmanager"),
        SystemProgram("docker-compose", "docker-compose"),  # validates deploy/compose.yaml
        OPENMP,
    )
}


def required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def require(name: str, program: SystemProgram | None = None) -> str:
    """The path of a system program; without it the calling test skips with one line naming
    the package to install, or fails when `SLA_REQUIRE_SYSTEM_PROGRAMS` is set."""
    import pytest

    program = program or PROGRAMS[name]
    found = program.path()
    if found is not None:
        return found
    message = f"{SKIP_PREFIX} {program.name} (install: {program.install_hint})"
    if required():
        pytest.fail(f"{message}; {REQUIRE_VARIABLE} is set, so this fails rather than skips")
    pytest.skip(message, allow_module_level=True)  # also from a module that needs it to import


def can_install() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0 and bool(shutil.which("apt-get"))


def install_missing() -> int:
    """Install the missing programs where the machine can; returns a process exit code."""
    missing = [p for p in PROGRAMS.values() if p.path() is None]
    if not missing:
        return 0
    packages = sorted({p.package for p in missing})
    if not can_install():
        hint = " ".join(packages)
        print(
            f"{SKIP_PREFIX} {', '.join(p.name for p in missing)}; the tests that drive them "
            f"skip (as root: apt-get install {hint})",
            file=sys.stderr,
        )
        return 1 if required() else 0
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=600"]  # another apt may hold the lock
    print(f"installing {', '.join(packages)} from Debian for the tests", file=sys.stderr)
    steps = [[*apt, "update"]]
    for recommends in (True, False):
        group = sorted({p.package for p in missing if p.recommends == recommends})
        if group:
            flags = [] if recommends else ["--no-install-recommends"]
            steps.append([*apt, "install", "-y", *flags, *group])
    for step in steps:
        if subprocess.run(step, env=env, check=False).returncode != 0:
            print(f"`{' '.join(step)}` failed; the tests that need it skip", file=sys.stderr)
            return 1 if required() else 0
    return 0


if __name__ == "__main__":
    sys.exit(install_missing())
