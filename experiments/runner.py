"""Run an experiment config: every grid point and seed, in parallel on Ray, then report.

``run_experiment("exp.toml", seeds=4, out="results/")`` runs the grid on a local Ray
(``ray.init(num_cpus=2)``) or on a cluster (``ray_address``), shows a progress bar, and
writes to ``out``:

- ``results.csv``: one row per run (grid point, seed, swept settings, every metric); the
  same config and seeds give the same file, byte for byte;
- ``summary.csv``: per grid point, the mean and standard deviation of each metric;
- PNG plots and ``report.md``, a Markdown report that shows them.

``parallel=False`` runs everything in this process (tests, debugging, small sweeps).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments import config as cfg
from experiments import gode_sunder as gs
from experiments import scenarios

#: Columns of results.csv before the swept settings and the metrics.
LEAD_COLUMNS = ("experiment", "point", "seed")


def run_task(task: cfg.Task) -> dict[str, Any]:
    """Run one task; return ``{"metrics": {...}, "series": {...}, "notes": [...]}``."""
    if task.kind == "gode_sunder":
        g = task.settings["gode_sunder"]
        session = gs.simulate(gs.market(int(g["market"])), g["trader"], int(g["periods"]),
                              int(g["orders_per_period"]), g["rule"], task.seed)  # fmt: skip
        metrics = session.summary()
        for key in ("market", "trader", "periods", "orders_per_period", "rule", "seed"):
            metrics.pop(key)
        notes = [gs.MARKET5_NOTE] if session.mkt.constructed else []
        series = {"efficiency": session.efficiencies.tolist()}
        return {"metrics": metrics, "series": series, "notes": notes}
    result = scenarios.run(task.settings["scenario"], task.settings["market"], task.seed)
    return {"metrics": result.metrics, "series": result.series, "notes": result.notes}


@dataclass
class ExperimentResult:
    """The runs of one experiment and where their outputs went."""

    config: cfg.Config
    tasks: list[cfg.Task]
    results: list[dict[str, Any]]
    seconds: float
    where: str  #: "in process", "local Ray (2 CPUs)" or the cluster address
    files: list[Path] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Return one row per run: experiment, point, seed, swept settings, metrics."""
        rows = []
        for task, result in zip(self.tasks, self.results, strict=True):
            row: dict[str, Any] = {"experiment": self.config.name, "point": task.point,
                                   "seed": task.seed}  # fmt: skip
            row |= _labels(self.config, task)
            row |= result["metrics"]
            rows.append(row)
        return rows

    def summary(self) -> list[dict[str, Any]]:
        """Return per grid point the mean and standard deviation of every numeric metric."""
        by_point: dict[int, list[dict[str, Any]]] = {}
        for task, result in zip(self.tasks, self.results, strict=True):
            by_point.setdefault(task.point, []).append(result["metrics"])
        out = []
        for point, metrics in by_point.items():
            task = next(t for t in self.tasks if t.point == point)
            row: dict[str, Any] = {"point": point, "label": label(self.config, task),
                                   "runs": len(metrics)}  # fmt: skip
            row |= _labels(self.config, task)
            for key in metrics[0]:
                values = [_number(m.get(key)) for m in metrics]
                finite = [v for v in values if v is not None and not math.isnan(v)]
                if all(v is not None for v in values):
                    row[f"{key}_mean"] = sum(finite) / len(finite) if finite else math.nan
                    row[f"{key}_std"] = _std(finite)
            out.append(row)
        return out

    def notes(self) -> list[str]:
        """Return the distinct notes the runs made (e.g. constructed schedules)."""
        seen: list[str] = []
        for r in self.results:
            for note in r["notes"]:
                if note not in seen:
                    seen.append(note)
        return seen


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _std(values: list[float]) -> float:
    """The sample standard deviation; NaN (``nan`` in the CSV) for fewer than two runs,
    where it is not known rather than zero."""
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _labels(config: cfg.Config, task: cfg.Task) -> dict[str, Any]:
    """Return the settings that identify the task's grid point, as CSV columns."""
    keys = list(config.swept_keys)
    if config.kind == "market" and "market.mechanism" not in keys:
        keys.insert(0, "market.mechanism")
    if config.kind == "gode_sunder":
        keys = [k for k in ("gode_sunder.market", "gode_sunder.trader") if k not in keys] + keys
    out = {}
    for full in keys:
        section, key = full.split(".", 1)
        out[full] = task.settings.get(section, {}).get(key, "")
    return out


def label(config: cfg.Config, task: cfg.Task) -> str:
    """Return a short label of the task's grid point (the swept settings)."""
    parts = [f"{k.split('.', 1)[1]}={v}" for k, v in _labels(config, task).items() if v != ""]
    return ", ".join(parts) or "all runs"


def run_experiment(config: str | Path | cfg.Config, seeds: int | None = None,
                   out: str | Path | None = None, ray_address: str | None = None,
                   parallel: bool = True, progress: bool = True,
                   num_cpus: int = 2) -> ExperimentResult:  # fmt: skip
    """Run every grid point of ``config`` with ``seeds`` seeds and write the outputs to ``out``.

    ``parallel``: run on Ray (a local instance with ``num_cpus`` CPUs, or the cluster at
    ``ray_address``); otherwise run in this process. ``progress``: show a progress bar.
    """
    conf = config if isinstance(config, cfg.Config) else cfg.load(config)
    tasks = conf.tasks(seeds)
    start = time.perf_counter()
    if parallel:
        results, where = _run_ray(tasks, ray_address, num_cpus, progress, conf.name)
    else:
        results = _run_local(tasks, progress, conf.name)
        where = "in process"
    result = ExperimentResult(conf, tasks, results, time.perf_counter() - start, where)
    if out is not None:
        from experiments import report

        result.files = report.write(result, Path(out))
    return result


def _progress(
    total: int, title: str, enabled: bool
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Return (advance, stop) callbacks of a rich progress bar (no-ops when disabled)."""
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=False)  # fmt: skip
    bar.start()
    tid = bar.add_task(title, total=total)
    return (lambda: bar.advance(tid)), bar.stop


def _run_local(tasks: Iterable[cfg.Task], progress: bool, title: str) -> list[dict[str, Any]]:
    tasks = list(tasks)
    advance, stop = _progress(len(tasks), title, progress)
    try:
        results = []
        for task in tasks:
            results.append(run_task(task))
            advance()
    finally:
        stop()
    return results


def _run_ray(tasks: list[cfg.Task], address: str | None, num_cpus: int, progress: bool,
             title: str) -> tuple[list[dict[str, Any]], str]:  # fmt: skip
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(
            "Ray is not installed: pip install 'cfx[experiments]', or run without Ray (--no-ray)"
        ) from exc

    started = False
    if not ray.is_initialized():
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address:
            ray.init(address=address, **quiet)  # type: ignore[arg-type]
        else:
            # local workers import cfx from this checkout, installed or not
            root = str(Path(__file__).resolve().parent.parent)
            ray.init(num_cpus=num_cpus, include_dashboard=False,
                     runtime_env={"env_vars": {"PYTHONPATH": root}}, **quiet)  # type: ignore[arg-type]  # fmt: skip
        started = True
    where = f"Ray cluster at {address}" if address else f"local Ray ({num_cpus} CPUs)"
    remote = ray.remote(num_cpus=1)(run_task)
    refs = [remote.remote(task) for task in tasks]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[dict[str, Any] | None] = [None] * len(refs)
    advance, stop = _progress(len(refs), title, progress)
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[index[ref]] = ray.get(ref)
                advance()
    finally:
        stop()
        if started:
            ray.shutdown()
    return [r for r in results if r is not None], where


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Write dict rows to CSV: columns in order of first appearance, floats as ``repr``."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    path.write_text(buf.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)
