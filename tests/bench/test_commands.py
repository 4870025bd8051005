"""Each ``cfx bench`` command, run for real in its quick form, prints well-formed JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def bench(*args: str, cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", "bench", *args, "--json"],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["python"] and "numpy" in machine["packages"]
    return result


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    return tmp_path


def test_gateway_quick(cwd: Path) -> None:
    result = bench("gateway", "--quick", "--out", str(cwd / "plots"), cwd=cwd)
    assert result["benchmark"] == "gateway"
    assert set(result["closed_loop"]) == {"websocket", "rest"}
    assert result["machine"]["fdatasync"]["p50_ms"] > 0  # the server's data dir was ours
    for transport in ("websocket", "rest"):
        sweep = result["sweep"][transport]
        assert sweep["points"], transport
        for p in sweep["points"]:
            assert p["offered_per_s"] > 0 and p["requests"] > 0
            lat = p["median"]["latency"]
            assert 0 < lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"] <= lat["max_us"]
            assert p["server_cpu_percent"] is not None and p["server_peak_rss_mb"] > 0
        assert sweep["knee_per_s"] is None or sweep["knee_per_s"] in [
            p["offered_per_s"] for p in sweep["points"]
        ]
    assert all(Path(p).stat().st_size > 0 for p in result["plots"])


def test_gateway_scenario_file_and_a_bad_key(cwd: Path) -> None:
    good = cwd / "s.toml"
    good.write_text(
        'transport = "websocket"\nconnections = 2\nrate = 100\n[mix]\nlimit = 0.6\nmarket = 0\ncancel = 0.4\n'
    )
    result = bench(
        "gateway", "--quick", "--scenario", str(good), "--no-closed", "--out", str(cwd), cwd=cwd
    )
    assert result["scenario"]["connections"] == 2
    assert [p["offered_per_s"] for p in result["sweep"]["websocket"]["points"]] == [100.0]
    bad = cwd / "bad.toml"
    bad.write_text("conections = 2\n")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "bench", "gateway", "--scenario", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)  # fmt: skip
    assert done.returncode == 2
    assert "unknown key 'conections'" in done.stderr and "did you mean 'connections'" in done.stderr


def test_feed_quick(cwd: Path) -> None:
    result = bench("feed", "--quick", "--out", str(cwd), cwd=cwd)
    assert result["benchmark"] == "feed"
    (run,) = result["runs"]
    assert run["subscribers"] == 20 and run["median"]["messages_per_s"] > 0
    lag = run["median"]["lag"]
    assert 0 < lag["p50_us"] <= lag["p99_us"] <= lag["max_us"]
    assert run["gaps"] == 0


def test_recovery_quick(cwd: Path) -> None:
    result = bench("recovery", "--sizes", "500,1000", "--out", str(cwd), cwd=cwd)
    assert [j["commands"] for j in result["journals"]] == [500, 1000]
    for j in result["journals"]:
        assert j["journal_read_cmd_per_s"] > 0 and j["replay_only_s"] > 0
        assert j["snapshot_replay_s"] > 0 and j["serve_healthy_s"] > 0


def test_engine_quick_records_the_machine(cwd: Path) -> None:
    result = bench("engine", "--quick", cwd=cwd)
    assert result["benchmark"] == "engine" and result["reference"]["identical_events"]
