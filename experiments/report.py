"""Write an experiment's outputs: CSV files, PNG plots and a Markdown report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from experiments.runner import ExperimentResult

#: Most grid points a price-path figure shows.
MAX_PATHS = 15


def write(result: ExperimentResult, out: Path) -> list[Path]:
    """Write results.csv, summary.csv, plots and report.md into ``out``; return the files."""
    from experiments.runner import write_csv

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.csv", out / "summary.csv"]
    write_csv(result.rows(), files[0])
    write_csv(result.summary(), files[1])
    plots = plot(result, out)
    files += plots
    report = out / "report.md"
    report.write_text(markdown(result, [p.name for p in plots]))
    files.append(report)
    return files


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(result: ExperimentResult, out: Path) -> list[Path]:
    """Draw one bar chart per reported metric, and price paths or sensitivity curves."""
    plt = _pyplot()
    summary = result.summary()
    files = []
    for metric in result.config.metrics:
        if not any(f"{metric}_mean" in row for row in summary):
            continue
        labels = [row["label"] for row in summary]
        means = [row.get(f"{metric}_mean", math.nan) for row in summary]
        stds = [row.get(f"{metric}_std", math.nan) for row in summary]
        row = max(0.12, min(0.35, 12 / len(labels)))  # inches per bar: long grids stay small
        fig, ax = plt.subplots(figsize=(7, row * len(labels) + 1.2), dpi=80)
        y = list(range(len(labels)))
        ax.barh(y, [0 if math.isnan(v) else v for v in means],
                xerr=[0 if math.isnan(s) else s for s in stds], color="#4c78a8",
                ecolor="#333333", capsize=2)  # fmt: skip
        ax.set_yticks(y, labels, fontsize=7 if row >= 0.25 else 5)
        ax.invert_yaxis()
        ax.set_xlabel(f"{metric} (mean ± sd over {summary[0]['runs']} seeds)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = out / f"{metric}.png"
        fig.savefig(path, pil_kwargs={"optimize": True})
        plt.close(fig)
        files.append(path)
    if result.config.kind == "market":
        paths = _price_paths(result, out, plt)
        if paths is not None:
            files.append(paths)
    elif "gode_sunder.orders_per_period" in result.config.swept_keys:
        files.append(_sensitivity(result, out, plt))
    return files


def _price_paths(result: ExperimentResult, out: Path, plt: Any) -> Path | None:
    """Plot the first seed's price path at each market grid point (up to ``MAX_PATHS``)."""
    from experiments.runner import label

    first: dict[int, tuple[Any, dict[str, Any]]] = {}
    for task, r in zip(result.tasks, result.results, strict=True):
        if task.point not in first and r["series"].get("step"):
            first[task.point] = (task, r["series"])
    if not first:
        return None
    items = list(first.values())[:MAX_PATHS]
    cols = 1 if len(items) == 1 else 2 if len(items) <= 6 else 3
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 0.4, 1.9 * rows + 0.5), dpi=80,
                             squeeze=False, sharex=True)  # fmt: skip
    for ax, (task, s) in zip(axes.flat, items, strict=False):
        ax.plot(s["step"], s["bid"], color="#59a14f", lw=0.6, label="best bid")
        ax.plot(s["step"], s["ask"], color="#e15759", lw=0.6, label="best ask")
        ax.plot(s["step"], s["last"], color="#333333", lw=1.0, label="last trade")
        shock = s["shock_step"][0]
        steps = s["step"]
        ax.hlines(s["eq_before"][0], steps[0], shock, colors="#f28e2b", linestyles="--", lw=0.8,
                  label="equilibrium")  # fmt: skip
        ax.hlines(s["eq_after"][0], shock, steps[-1], colors="#f28e2b", linestyles="--", lw=0.8)
        ax.set_title(label(result.config, task), fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.supxlabel("step (first seed)", fontsize=7)
    fig.supylabel("price", fontsize=7)
    fig.tight_layout()
    path = out / "prices.png"
    fig.savefig(path, pil_kwargs={"optimize": True})
    plt.close(fig)
    return path


def _sensitivity(result: ExperimentResult, out: Path, plt: Any) -> Path:
    """Plot Gode-Sunder efficiency against orders per period: colour per market, solid ZI-C,
    dotted ZI-U, one marker per standing-order rule."""
    curves: dict[tuple[int, str, str], dict[int, list[float]]] = {}
    for task, r in zip(result.tasks, result.results, strict=True):
        g = task.settings["gode_sunder"]
        key = (int(g["market"]), str(g["trader"]), str(g["rule"]))
        by_orders = curves.setdefault(key, {})
        by_orders.setdefault(int(g["orders_per_period"]), []).append(r["metrics"]["efficiency"])
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2"]
    markers = {"improve": "o", "replace": "s", "queue": "^"}
    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
    for (market, trader, rule), points in sorted(curves.items()):
        xs = sorted(points)
        ys = [sum(points[x]) / len(points[x]) for x in xs]
        ax.plot(xs, ys, color=colors[(market - 1) % len(colors)], marker=markers.get(rule, "o"),
                ms=3, lw=1, ls="-" if trader == "zi_c" else ":")  # fmt: skip
    handles = [plt.Line2D([], [], color=c, lw=2, label=f"market {i + 1}")
               for i, c in enumerate(colors)]  # fmt: skip
    handles += [plt.Line2D([], [], color="#333333", ls="-", label="ZI-C"),
                plt.Line2D([], [], color="#333333", ls=":", label="ZI-U")]  # fmt: skip
    rules = sorted({k[2] for k in curves})
    handles += [plt.Line2D([], [], color="#333333", marker=markers.get(r, "o"), ls="", label=r)
                for r in rules]  # fmt: skip
    ax.legend(handles=handles, fontsize=6, ncol=3, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel("orders per period", fontsize=8)
    ax.set_ylabel("allocative efficiency", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "sensitivity.png"
    fig.savefig(path, pil_kwargs={"optimize": True})
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _cell(row: dict[str, Any], metric: str) -> str:
    if f"{metric}_mean" not in row:
        return "–"
    if row["runs"] < 2:  # one seed: no spread to show
        return _fmt(row[f"{metric}_mean"])
    return f"{_fmt(row[f'{metric}_mean'])} ± {_fmt(row[f'{metric}_std'])}"


def markdown(result: ExperimentResult, plots: list[str]) -> str:
    """Return the Markdown report: settings, summary table, plots and notes."""
    conf = result.config
    summary = result.summary()
    n_points = len(summary)
    seeds = summary[0]["runs"] if summary else 0
    lines = [f"# {conf.name}", ""]
    if conf.description:
        lines += [conf.description.strip(), ""]
    lines += [
        f"{len(result.tasks)} runs ({n_points} settings x {seeds} seeds, first seed "
        f"{conf.seed}) in {result.seconds:.1f} s, {result.where}. Rerun with "
        f"`cfx experiment run {conf.path or conf.name + '.toml'} --seeds {seeds}`.",
        "",
        "## Results",
        "",
        "Mean ± standard deviation over seeds."
        if seeds > 1
        else "One seed: no standard deviation.",
        "",
    ]
    metrics = [m for m in conf.metrics if any(f"{m}_mean" in row for row in summary)]
    lines.append("| setting | " + " | ".join(metrics) + " |")
    lines.append("|---|" + "---:|" * len(metrics))
    for row in summary:
        cells = [_cell(row, m) for m in metrics]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""]
    for name in plots:
        lines += [f"![{name[:-4]}]({name})", ""]
    notes = result.notes()
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Config", "", "```toml", conf.source.strip(), "```", "",
              "## Files", "",
              "- `results.csv`: one row per run (grid point, seed, swept settings, all metrics)",
              "- `summary.csv`: per grid point, mean and standard deviation of every metric",
              ""]  # fmt: skip
    return "\n".join(lines)
