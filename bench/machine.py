"""What every benchmark shares: the machine it ran on, and how it prints its result."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
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

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def sync_latency(
    directory: str | Path, samples: int = 200, budget_s: float = 2.0
) -> dict[str, Any]:
    """Time ``fdatasync`` of small appends into blocks already written, as the journal makes
    each batch durable (it keeps zeros written ahead of its records): a median and a p99 in
    milliseconds over ``samples`` syncs, fewer if they take longer than ``budget_s``.

    Order entry waits for one of these per batch, so on a disk that syncs in 2 ms rather than
    0.2 ms the gateway's figures are not comparable: the benchmarks that write print it.
    """
    import statistics
    import tempfile
    import time

    runway = 1 << 20
    with tempfile.NamedTemporaryFile(dir=directory, prefix="cfx-sync-") as f:
        fd = f.fileno()
        os.write(fd, bytes(runway))
        os.fsync(fd)
        record = b"\x01" * 128
        times = []
        deadline = time.perf_counter() + budget_s
        for i in range(samples):
            os.pwrite(fd, record, (i * len(record)) % runway)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t0) * 1e3)
            if t0 > deadline:
                break
    times.sort()
    return {"p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
            "samples": len(times), "directory": str(directory)}  # fmt: skip


def machine_info(disk: str | Path | None = None) -> dict[str, Any]:
    """Return CPU model, core count, memory, OS, Python and package versions, the commit of
    the code measured and the load average when the run began (others' jobs share the cores);
    with ``disk``, a directory the run writes to, how fast it syncs (:func:`sync_latency`)."""
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
    } | ({"fdatasync": sync_latency(disk)} if disk is not None else {})


def describe(m: dict[str, Any]) -> str:
    """The machine of a result in one line, for the head of its tables: what the JSON holds
    (CPU, cores, memory, OS, Python, packages, commit, load average when the run began, and
    the disk's sync time when measured)."""
    memory = f"{m['memory_gib']:g} GiB, " if m.get("memory_gib") is not None else ""
    packages = ", ".join(f"{name} {version}" for name, version in m.get("packages", {}).items())
    load = m.get("load_average")
    sync = m.get("fdatasync")
    return (
        f"machine: {m['cpu']}, {m['cores']} cores, {memory}{m.get('os', '?')}, Python "
        f"{m['python']}; {packages}; commit {m.get('commit') or 'unknown'}"
        + (f"; load average at the start {' '.join(f'{x:g}' for x in load)}" if load else "")
        + (
            f"; fdatasync of an append p50 {sync['p50_ms']:g} ms, p99 {sync['p99_ms']:g} ms"
            if sync
            else ""
        )
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
