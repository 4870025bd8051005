"""What every benchmark shares: the machine it ran on, and how it prints its result."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_PACKAGES = ("cfx", "numpy", "numba", "llvmlite", "sortedcontainers", "fastapi", "uvicorn",
             "websockets", "sqlmodel", "orjson")  # fmt: skip


#: Console width when the output is not a terminal: wider than any table we print.
WIDE = 1_000


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str | None:
    """The checkout's commit, with ``+dirty`` if tracked files differ from it."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """Return CPU model, core count, memory, OS, Python and package versions, the commit of
    the code measured and the load average when the run began (others' jobs share the cores)."""
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        memory_gib = None
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "commit": _commit(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def describe(m: dict[str, Any]) -> str:
    """The machine of a result in one line, for the head of its tables: what the JSON holds
    (CPU, cores, memory, OS, Python, packages, commit, load average when the run began)."""
    memory = f"{m['memory_gib']:g} GiB, " if m.get("memory_gib") is not None else ""
    packages = ", ".join(f"{name} {version}" for name, version in m.get("packages", {}).items())
    load = m.get("load_average")
    return (
        f"machine: {m['cpu']}, {m['cores']} cores, {memory}{m.get('os', '?')}, Python "
        f"{m['python']}; {packages}; commit {m.get('commit') or 'unknown'}"
        + (f"; load average at the start {' '.join(f'{x:g}' for x in load)}" if load else "")
    )


def console() -> Console:
    """Return a console for the result tables: a terminal's own width, else room for any table.

    Written to a file or a pipe, a table keeps its natural width instead of cutting the
    ``[min-max]`` cells of its widest columns.
    """
    from rich.console import Console

    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=WIDE)


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """Print ``result`` as indented JSON, or with ``render`` for people."""
    if as_json:
        import orjson

        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        render(result)
