"""PNG plots of benchmark results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

_PERCENTILES = (("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p99.9_us", "p99.9"),
                ("max_us", "max"))  # fmt: skip


def _subtitle(result: dict[str, Any]) -> str:
    m = result["machine"]
    return f"{m['cpu']}, {m['cores']} cores, Python {m['python']}"


def gateway_plots(result: dict[str, Any], out: Path) -> list[Path]:
    """Latency percentiles against offered rate, and acknowledged orders/s over time."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for transport, sweep in result.get("sweep", {}).items():
        if not sweep["points"]:
            continue
        for name, figure in (("latency", latency_figure), ("timeline", timeline_figure)):
            fig = figure(result, transport)
            path = out / f"gateway-{transport}-{name}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
    return written


def latency_figure(result: dict[str, Any], transport: str) -> Figure:
    """Latency percentiles (log axes) and throughput (linear, from 0) against offered rate."""
    sweep = result["sweep"][transport]
    points = sweep["points"]
    target_ms = result["scenario"]["p99_target_ms"]
    rates = [p["offered_per_s"] for p in points]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, label in _PERCENTILES:
        ax.plot(
            rates, [p["median"]["latency"][key] / 1000 for p in points], marker="o", label=label
        )
    p99 = [p["median"]["latency"]["p99_us"] / 1000 for p in points]
    lo = [p["min"]["latency"]["p99_us"] / 1000 for p in points]
    hi = [p["max"]["latency"]["p99_us"] / 1000 for p in points]
    # bars, not a band: a band between the points is nothing to see at a single rate
    ax.errorbar(rates, p99, yerr=[[m - low for m, low in zip(p99, lo, strict=True)],
                                  [high - m for m, high in zip(p99, hi, strict=True)]],
                fmt="none", ecolor="tab:green", capsize=4, label="p99 min-max")  # fmt: skip
    ax.axhline(target_ms, color="red", linestyle="--", linewidth=1,
               label=f"target p99 {target_ms:g} ms")  # fmt: skip
    if sweep.get("knee_per_s"):
        ax.axvline(sweep["knee_per_s"], color="grey", linestyle=":",
                   label=f"knee {sweep['knee_per_s']:,.0f}/s")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain(ax.yaxis)
    _rates(ax, rates)
    ax.set_xlabel("offered orders/s (open loop)")
    ax.set_ylabel("latency from intended send, ms")
    ax.set_title(f"{transport}: latency percentiles (median of repetitions)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax2.plot(rates, rates, color="grey", linestyle="--", label="offered")
    ax2.plot(rates, [p["median"]["ok_per_s"] for p in points], marker="o", label="acknowledged")
    ax2.plot(rates, [p["median"]["achieved_per_s"] for p in points], marker="x", label="answered")
    ax2.set_xscale("log")
    _rates(ax2, rates)
    ax2.set_ylim(0, max(rates) * 1.1)  # linear from 0: a shortfall shows as a gap
    ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax2.set_xlabel("offered orders/s")
    ax2.set_ylabel("orders/s")
    ax2.set_title(f"{transport}: throughput achieved vs offered")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(_subtitle(result), fontsize=9)
    fig.tight_layout()
    return fig


def _rates(ax: Any, rates: list[float]) -> None:
    """Label the log x axis at exactly the offered rates."""
    ax.xaxis.set_major_locator(FixedLocator(rates))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(rates) > 6:
        ax.tick_params(axis="x", labelrotation=45)


def _plain(*axes: Any) -> None:
    """Label log axes 1, 2, 5, 10, 20, 50 ... as plain numbers, never as powers of ten (a
    sweep of a decade or less would otherwise get one label, or labels like 9.00008x10^3)."""
    for axis in axes:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def timeline_figure(result: dict[str, Any], transport: str) -> Figure:
    """Acknowledged orders/s over time per offered rate, legend beside the plot.

    The last time bin ends with the run, part of the way through: drawn, its rate would be a
    drop towards 0 that never happened, so it is left out.
    """
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for p in result["sweep"][transport]["points"]:
        timeline = p["median_run"]["timeline"][:-1]
        ax.plot([t for t, _ in timeline], [v for _, v in timeline],
                label=f"offered {p['offered_per_s']:,.0f}/s")  # fmt: skip
    warmup = result["scenario"]["warmup"]
    ax.axvline(warmup, color="grey", linestyle=":", label="end of warm-up")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("acknowledged orders/s")
    ax.set_title(
        f"{transport}: throughput over time (median repetition)\n{_subtitle(result)}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def feed_plot(result: dict[str, Any], out: Path) -> list[Path]:
    """Delivery-lag percentiles per run of the feed benchmark (one bar group per run)."""
    out.mkdir(parents=True, exist_ok=True)
    fig = feed_figure(result)
    path = out / "feed-lag.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def feed_figure(result: dict[str, Any]) -> Figure:
    """Bars from 0 on a linear axis, each labelled with its value: p50 and max differ by
    10x or more, and a log axis would start the bars anywhere and leave few tick labels."""
    runs = result["runs"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = [f"{r['subscribers']} subs\n{r['rate']:g}/s" for r in runs]
    width = 0.8 / len(_PERCENTILES)
    for j, (key, label) in enumerate(_PERCENTILES):
        bars = ax.bar([i + j * width for i in range(len(runs))],
                      [r["median"]["lag"][key] / 1000 for r in runs], width, label=label)  # fmt: skip
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(runs))], labels)
    ax.set_ylabel("lag from event time to receipt, ms")
    ax.axhline(50, color="red", linestyle="--", linewidth=1, label="target p99 50 ms")
    ax.set_title(f"feed delivery lag (median of repetitions)\n{_subtitle(result)}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def recovery_plot(result: dict[str, Any], out: Path) -> list[Path]:
    """Restart seconds against journal length: replay only, snapshot + replay, cfx serve."""
    out.mkdir(parents=True, exist_ok=True)
    rows = result["journals"]
    sizes = [r["commands"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label in (("replay_only_s", "replay only (state from empty)"),
                       ("snapshot_replay_s", "newest snapshot + replay"),
                       ("journal_read_s", "journal read, checksums only"),
                       ("serve_healthy_s", "cfx serve to first healthy response")):  # fmt: skip
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            ax.plot(sizes, values, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain(ax.xaxis, ax.yaxis)
    ax.set_xlabel("commands in the journal")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"restart time as the journal grows\n{_subtitle(result)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = out / "recovery.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
