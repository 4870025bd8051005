"""What the load benchmarks print and draw, from results built by hand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

from bench import feed, gateway
from bench.machine import machine_info, sync_latency
from bench.plots import feed_figure, latency_figure, timeline_figure

MACHINE = {"cpu": "AMD EPYC 7B13 64-Core Processor", "cores": 2, "python": "3.11.7",
           "memory_gib": 23.4, "os": "Linux 6.1", "packages": {"numpy": "2.4.6", "numba": "0.68.1"},
           "commit": "60fb39a0c614", "load_average": [0.4, 0.5, 0.6],
           "fdatasync": {"p50_ms": 0.12, "p99_ms": 0.41, "samples": 200, "directory": "/tmp"}}  # fmt: skip


def latency(p50_ms: float) -> dict[str, int]:
    us = int(p50_ms * 1000)
    return {"p50_us": us, "p90_us": 2 * us, "p99_us": 3 * us, "p99.9_us": 4 * us,
            "max_us": 40 * us}  # fmt: skip


def gateway_result() -> dict[str, Any]:
    def stats(ok: float, p50_ms: float) -> dict[str, Any]:
        return {"ok_per_s": ok, "achieved_per_s": ok, "latency": latency(p50_ms)}

    closed = {"median_run": {"in_flight": 64}, "median": stats(5_261.4, 1.5),
              "min": stats(5_261.0, 1.25), "max": stats(5_262.0, 1.75),
              "server_cpu_percent": 97.0, "server_loop_cpu_percent": 71.0, "client_cpu_percent": 88.0,
              "errors": {"RATE_LIMITED": 12_345, "INSUFFICIENT_MARGIN": 1_234}}  # fmt: skip
    timeline = [[i * 0.25, 2_000.0] for i in range(32)] + [[8.0, 40.0]]
    point = {"offered_per_s": 2_000.0, "holds": True, "median": stats(2_000.0, 1.0),
             "min": stats(1_990.0, 0.9), "max": stats(2_000.0, 1.1), "errors": {},
             "server_cpu_percent": 50.0, "server_peak_rss_mb": 180.0, "client_cpu_percent": 40.0,
             "median_run": {"timeline": timeline}}  # fmt: skip
    return {"machine": MACHINE,
            "scenario": {"connections": 4, "symbols": 1, "repetitions": 3, "duration": 6.0,
                         "warmup": 2.0, "p99_target_ms": 10.0,
                         "mix": {"limit": 0.55, "market": 0.05, "cancel": 0.4, "crossing": 0.2}},
            "closed_loop": {"websocket": closed, "rest": closed},
            "sweep": {"websocket": {"points": [point], "knee_per_s": 2_000.0}}}  # fmt: skip


def feed_result(p50_ms: float = 9.5) -> dict[str, Any]:
    def stats(lag_ms: float) -> dict[str, Any]:
        return {"lag": latency(lag_ms), "messages_per_s": 72_400.0, "delivered_fraction": 1.0,
                "book_updates_per_subscriber_per_s": 2_000.0, "book_updates_sent_per_s": 2_000.0}  # fmt: skip

    run = {"subscribers": 500, "rate": 2_000.0, "median": stats(p50_ms), "min": stats(p50_ms / 2),
           "max": stats(p50_ms * 1_000), "gaps": 0, "slow_consumer_disconnects": 0}  # fmt: skip
    return {"machine": MACHINE, "symbol": "H100-2026-01-01", "duration_s": 10.0, "warmup_s": 2.0,
            "runs": [run, run | {"subscribers": 50}]}  # fmt: skip


def test_the_gateway_tables_show_min_and_max_whole(capsys: pytest.CaptureFixture[str]) -> None:
    gateway.render(gateway_result())
    out = capsys.readouterr().out
    assert "5,261 [5,261-5,262]" in out  # acked/s [min-max]
    assert "4.50 [3.75-5.25]" in out  # closed-loop p99 ms [min-max]
    # server CPU, then its event-loop thread's share (the single writer), then the client's
    assert re.search(r"97\s*│\s*71\s*│\s*88", out), out
    # the titles say what the brackets hold (rich would take "[min-max]" for markup)
    assert "median of repetitions [min-max]" in out
    assert "median of repetitions [min-max of p99]" in out
    assert "machine: AMD EPYC 7B13 64-Core Processor, 2 cores, 23.4 GiB, Linux 6.1" in out
    assert "numba 0.68.1; commit 60fb39a0c614; load average at the start 0.4 0.5 0.6" in out
    assert "0.6; fdatasync of an append p50 0.12 ms, p99 0.41 ms" in out
    assert "RATE_LIMITED 12,345, INSUFFICIENT_MARGIN 1,234" in out
    assert "…" not in out


def test_the_feed_table_shows_min_and_max_whole(capsys: pytest.CaptureFixture[str]) -> None:
    feed.render(feed_result())
    out = capsys.readouterr().out
    assert "28.50 [14.25-28,500.00]" in out  # p99 ms [min-max]
    assert "median of repetitions [min-max of p99]" in out
    assert "…" not in out


def test_the_feed_plot_draws_bars_from_zero_with_readable_ticks() -> None:
    fig = feed_figure(feed_result(p50_ms=2.0))  # max 40x p50: a wide range
    (ax,) = fig.axes
    try:
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
        assert all(bar.get_y() == 0 for bar in ax.patches)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert len(labels) >= 4
        values = {t.get_text() for t in ax.texts}
        assert {"2.0", "80.0"} <= values  # each bar names its value: p50 and max
    finally:
        plt.close(fig)


def test_the_timeline_leaves_out_the_partial_last_bin_and_the_legend_hides_no_line() -> None:
    result = gateway_result()
    fig = timeline_figure(result, "websocket")
    (ax,) = fig.axes
    try:
        (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("offered")]
        assert list(line.get_xdata())[-1] == 7.75 and min(line.get_ydata()) == 2_000.0
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1  # beside the axes, not over a line
    finally:
        plt.close(fig)


def test_the_latency_plot_labels_the_rates_swept_and_plain_numbers() -> None:
    """The x axis names each offered rate (3,000 and 6,000 too, which a log axis would leave
    bare); the others read 2 / 5 / 10, never 10^3 or 9.00008x10^3; the p99 min-max shows as
    a bar even at a single rate."""
    result = gateway_result()
    (point,) = result["sweep"]["websocket"]["points"]
    for rates in ([2_000.0], [1_000.0, 3_000.0, 6_000.0]):
        result["sweep"]["websocket"]["points"] = [point | {"offered_per_s": r} for r in rates]
        fig = latency_figure(result, "websocket")
        ax, ax2 = fig.axes
        try:
            fig.canvas.draw()
            for axis in (ax.xaxis, ax2.xaxis):
                labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                assert labels == [f"{r:,.0f}" for r in rates]
            for axis in (ax.yaxis, ax2.yaxis):
                labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                assert len(labels) >= 2, labels
                assert all(label.replace(",", "").replace(".", "").isdigit() for label in labels)
            assert ax2.get_yscale() == "linear" and ax2.get_ylim()[0] == 0
            (bars,) = [c for c in ax.containers if c.get_label() == "p99 min-max"]
            (segments,) = bars.lines[2]
            assert len(segments.get_segments()) == len(rates)
        finally:
            plt.close(fig)


def test_the_disk_sync_time_is_measured_where_asked(tmp_path: Path) -> None:
    sync = sync_latency(tmp_path, samples=20)
    assert sync["samples"] == 20 and sync["directory"] == str(tmp_path)
    assert 0 < sync["p50_ms"] <= sync["p99_ms"]
    assert list(tmp_path.iterdir()) == []  # its file is gone
    assert "fdatasync" in machine_info(tmp_path) and "fdatasync" not in machine_info()
