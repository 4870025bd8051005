"""`cfx serve` refusing to start, and what it says when recovery repaired something."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from clients import Client
from exchange.journal.format import RECORD_HEADER, SEGMENT_HEADER
from tests.gateway.conftest import ADMIN_TOKEN, START, Server, start_server, stop_server


def _serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "serve", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=120, env=None if env is None else os.environ | env,
    )  # fmt: skip


def _trade(server: Server, orders: int) -> None:
    buyer, seller = server.account("buyer"), server.account("seller")
    symbol = next(c["symbol"] for c in httpx.get(server.url + "/v1/contracts").json()
                  if c["product"] == "H100" and c["status"] == "trading")  # fmt: skip
    for n in range(orders):
        assert seller.place(symbol, "sell", "3.50", 1).status_code == 201
        assert buyer.place(symbol, "buy", "3.50" if n % 2 else "3.10", 1).status_code == 201


def _traded_with_snapshots(tmp_path: Path) -> Path:
    """A data dir that traded 40 orders with a snapshot every 20 commands (server stopped)."""
    data = tmp_path / "data"
    server = start_server(data, extra=["--snapshot-every", "20"])
    try:
        _trade(server, 20)
    finally:
        stop_server(server)
    return data


def _flip_bit(path: Path, offset: int) -> None:
    damaged = bytearray(path.read_bytes())
    damaged[offset] ^= 0x10
    path.write_bytes(bytes(damaged))


def _record_offset(segment: bytes, seq: int) -> int:
    """Where record ``seq`` starts in a segment that begins at seq 1."""
    offset = SEGMENT_HEADER.size
    for _ in range(1, seq):
        length, _crc, _seq = RECORD_HEADER.unpack_from(segment, offset)
        offset += RECORD_HEADER.size + length
    assert RECORD_HEADER.unpack_from(segment, offset)[2] == seq
    return offset


def _journal_files(data_dir: Path) -> dict[str, bytes]:
    """The journal's segments, snapshots and anything beside them, by name."""
    return {p.name: p.read_bytes() for p in (data_dir / "journal").iterdir() if p.name != "lock"}


def _segment(data_dir: Path) -> Path:
    [segment] = (data_dir / "journal").glob("journal-*.log")
    return segment


def test_a_port_in_use_is_refused_before_the_data_dir_is_made(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = _serve(tmp_path / "data", "--port", str(port))
    assert refused.returncode == 2, refused.stderr
    assert f"cfx serve: cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "data").exists()


def test_a_rate_limit_that_is_not_a_rate_is_refused_in_words(tmp_path: Path) -> None:
    for name, value in [("CFX_PUBLIC_RATE_LIMIT", "abc"), ("CFX_PUBLIC_RATE_LIMIT", "-5"),
                        ("CFX_PUBLIC_RATE_LIMIT", "inf"), ("CFX_RATE_LIMIT", "0"),
                        ("CFX_RATE_LIMIT", "1e308")]:  # fmt: skip
        refused = _serve(tmp_path / "data", env={name: value})
        assert refused.returncode == 2, refused.stderr
        assert f"cfx serve: {name}='{value}': give a positive number" in refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / "data").exists()


def test_the_clock_is_fixed_when_the_data_dir_is_made(tmp_path: Path) -> None:
    stop_server(start_server(tmp_path / "data"))  # a simulated clock
    refused = _serve(tmp_path / "data", "--port", "0", "--clock", "real")
    assert refused.returncode == 2, refused.stderr
    assert "runs on the simulated clock: start it with --clock sim" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_data_dir_without_its_clock_file_takes_the_clock_of_its_journal(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data)  # a simulated clock
    try:
        server.advance("2026-12-01T06:00:00Z")  # which only a simulated clock allows
    finally:
        stop_server(server)
    (data / "clock.json").unlink()  # made before the file was kept, or lost
    refused = _serve(data, "--port", "0", "--clock", "real")
    assert refused.returncode == 2, refused.stderr
    assert "runs on the simulated clock: start it with --clock sim" in refused.stderr
    assert not (data / "clock.json").exists()  # refused: nothing is written
    stop_server(start_server(data))
    assert (data / "clock.json").read_text() == '{"clock": "sim"}\n'
    real = tmp_path / "real"
    stop_server(start_server(real, clock="real"))  # ticks when it starts
    (real / "clock.json").unlink()
    refused = _serve(real, "--port", "0", "--clock", "sim")
    assert refused.returncode == 2, refused.stderr
    assert "runs on the real clock: start it with --clock real" in refused.stderr


def test_damage_a_snapshot_proves_acknowledged_is_refused_in_words(tmp_path: Path) -> None:
    data = _traded_with_snapshots(tmp_path)
    segment = _segment(data)
    # record 10's payload, before the snapshots
    _flip_bit(segment, _record_offset(segment.read_bytes(), 10) + RECORD_HEADER.size)
    before = _journal_files(data)
    refused = _serve(data, "--port", "0", "--clock", "sim", "--start", START)
    assert refused.returncode == 3, refused.stderr
    assert (
        "acknowledged records are damaged or missing, so nothing was cut or changed"
        in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert _journal_files(data) == before


def test_a_cut_tail_is_reported_when_the_exchange_starts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        with Client(server.url, admin_token=ADMIN_TOKEN) as admin:
            clean = admin.journal_status()
    finally:
        stop_server(server)
    assert clean["recovery"] == clean["recovery"] | {
        "snapshot_seq": 0, "truncated_bytes": 0, "reason": None, "cut_file": None,
        "snapshots_passed_over": [], "lossy_snapshot": False,
    }  # fmt: skip
    assert clean["seq"] == clean["last_seq"] >= 1 and clean["first_seq"] == 1
    with open(_segment(data), "ab") as segment:
        segment.write(b"not a record")  # after the records and the zeros written ahead
    server = start_server(data)
    try:
        status = server.admin("GET", "/v1/admin/journal").json()
    finally:
        stop_server(server)
    log = data.with_name("data.log").read_text()
    assert "cfx: WARNING: journal recovery: " in log
    assert "; the cut bytes are kept in " in log and ".cut-" in log
    recovery = status["recovery"]
    assert recovery["reason"] in log and recovery["reason"].startswith("bad crc at offset")
    assert recovery["truncated_bytes"] >= len(b"not a record")
    assert recovery["cut_file"].startswith(_segment(data).name + ".cut-")
    assert (data / "journal" / recovery["cut_file"]).read_bytes().endswith(b"not a record")
    assert recovery["last_seq"] == recovery["replayed"] == clean["seq"]  # nothing lost


def test_a_damaged_snapshot_passed_over_is_shown(tmp_path: Path) -> None:
    data = _traded_with_snapshots(tmp_path)
    newest = sorted((data / "journal").glob("snapshot-*"))[-1]
    _flip_bit(newest, newest.stat().st_size // 2)
    server = start_server(data)
    try:
        status = server.admin("GET", "/v1/admin/journal").json()
        refused = httpx.get(server.url + "/v1/admin/journal")
    finally:
        stop_server(server)
    assert refused.status_code == 401
    recovery = status["recovery"]
    [passed_over] = recovery["snapshots_passed_over"]
    *before, damaged_seq = status["snapshots"]  # none at 40 if 20 was still being written
    assert passed_over["seq"] == damaged_seq
    assert recovery["snapshot_seq"] == (before[-1] if before else 0)
    assert recovery["replayed"] == recovery["last_seq"] - recovery["snapshot_seq"]
    assert recovery["reason"] is None
    assert f"snapshot at seq {passed_over['seq']} not used: {passed_over['reason']}" in (
        data.with_name("data.log").read_text()
    )


def test_accounts_made_offline_leave_the_clock_to_the_server(tmp_path: Path) -> None:
    """`cfx admin create-account --data-dir` opens the exchange without serving it."""
    data = tmp_path / "data"

    def create(name: str) -> None:
        made = subprocess.run(
            [sys.executable, "-m", "clients.cli", "admin", "create-account", name,
             "--deposit", "100.00", "--data-dir", str(data)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr

    create("before")  # a fresh data dir: the server that comes next picks the clock
    assert (data / "clock.json").read_text() == '{"clock": null}\n'
    (data / "clock.json").unlink()  # as a data dir made offline before the file was kept:
    # the journal's first record, the clock set to the start, says nothing of the clock
    stop_server(start_server(data, clock="real"))
    create("after")  # a data dir on the real clock still takes accounts offline
    server = start_server(data, clock="real")
    try:
        assert server.account("third").request("GET", "/v1/account").status_code == 200
    finally:
        stop_server(server)


def test_the_port_refuses_connections_until_the_exchange_serves() -> None:
    """Bound early (a port in use is found at once), listening only once recovery is done:
    a client meanwhile is refused, which it can safely retry, rather than kept waiting."""
    from clients.cli import _bind

    [sock] = _bind("127.0.0.1", 0)
    try:
        with socket.socket() as client:
            assert client.connect_ex(sock.getsockname()) != 0
    finally:
        sock.close()


def test_access_log_names_each_request_and_is_off_by_default(tmp_path: Path) -> None:
    """``cfx serve --access-log``: a line per HTTP request and websocket handshake, with the
    client's address and the status; without it, none."""
    for flag in (["--access-log"], []):
        data_dir = tmp_path / f"data{len(flag)}"
        running = start_server(data_dir, extra=flag)
        try:
            assert httpx.get(running.url + "/v1/health").status_code == 200
            assert httpx.post(running.url + "/v1/orders", json={}).status_code == 401
        finally:
            stop_server(running)
        log = data_dir.with_name(data_dir.name + ".log").read_text()
        lines = ('"GET /v1/health HTTP/1.1" 200', '"POST /v1/orders HTTP/1.1" 401')
        assert all((f" - {line}" in log) == bool(flag) for line in lines), log  # after the client


def test_the_data_dir_is_private_and_an_open_one_is_pointed_out(tmp_path: Path) -> None:
    """A new data dir is the owner's alone (its master.key gives every API secret); one
    other users may read is served, with a warning saying so."""
    running = start_server(tmp_path / "data")
    stop_server(running)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert "open to other users" not in (tmp_path / "data.log").read_text()
    (tmp_path / "open").mkdir(mode=0o755)
    os.chmod(tmp_path / "open", 0o755)  # whatever the umask
    running = start_server(tmp_path / "open")
    stop_server(running)
    log = (tmp_path / "open.log").read_text()
    assert "is open to other users (mode 755)" in log and "chmod 700" in log, log
