"""python -m netserv bench: the command line, its JSON and CSV, a server in its own process."""

from __future__ import annotations

import csv
import json
import pathlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import netserv
from netserv.lab import demo
from netserv.measure import bench, load

#: Fields the issue asks every saved result to have.
REQUIRED = {"model", "impl", "transport", "clients", "rate", "duration", "completed", "errors",
            "throughput_rps", "latency_ms", "machine", "generator_cpu_per_request_us",
            "server_cpu_per_request_us"}


def test_bench_command_writes_json_with_every_field(tmp_path: pathlib.Path) -> None:
    out, table = tmp_path / "out.json", tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "netserv", "bench", "--model", "threading",
                           "--clients", "8", "--duration", "0.5", "--warmup", "0.2",
                           "--json", str(out), "--csv", str(table), "--quiet"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "threading" in proc.stdout and "p99" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) >= REQUIRED
    assert set(result["latency_ms"]) >= {"p50", "p90", "p99", "p999", "max"}
    assert {"cores", "python"} <= set(result["machine"])
    assert (result["model"], result["impl"], result["transport"], result["clients"]) == \
        ("threading", "netserv", "tcp", 8)
    assert result["completed"] > 0 and result["errors"] == 0
    assert result["server_cpu_per_request_us"] > 0 and result["generator_cpu_per_request_us"] > 0
    lat = result["latency_ms"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["model"] == "threading"
    assert set(load.CSV_FIELDS) == set(rows[0])


def test_run_bench_stdlib_forking_per_connection() -> None:
    result = bench.run_bench("forking", "stdlib", "tcp", clients=2, duration=0.4, warmup=0.1,
                             per_connection=True, quiet=True)
    assert result["impl"] == "stdlib" and result["per_connection"]
    assert result["completed"] > 0 and result["errors"] == 0
    # Forked children's CPU is counted once they are reaped at shutdown.
    assert result["server_cpu_per_request_us"] > 0


def test_connect_drives_a_running_server(capsys: pytest.CaptureFixture[str]) -> None:
    with demo.running(demo.make_server("threading", "tcp")) as server:
        host, port = server.server_address
        code = bench.main(["--connect", f"{host}:{port}", "--clients", "2", "--duration", "0.3",
                           "--warmup", "0", "--quiet"])
    assert code == 0
    assert "closed" in capsys.readouterr().out


def test_a_server_that_cannot_start_is_reported() -> None:
    # The spec is fine, but the server process fails at startup.
    server = bench.ServerProcess("threading")
    server.args[server.args.index("--model") + 1] = "no-such-model"
    with pytest.raises(RuntimeError, match="server did not start"), server:
        pass


def test_format_table_one_line_per_result() -> None:
    result = {"model": "sync", "impl": "netserv", "transport": "tcp", "mode": "open",
              "clients": 1, "rate": 100.0, "throughput_rps": 99.0, "errors": 0,
              "latency_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0},
              "generator_cpu_per_request_us": None, "server_cpu_per_request_us": 5.0}
    lines = bench.format_table([result, result]).splitlines()
    assert len(lines) == 4 and lines[2].split()[:4] == ["sync", "netserv", "tcp", "open"]


# -- bad input is refused before the run: exit status 2, one line, no connect() --

def bench_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netserv", "bench", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def trap() -> Iterator[socket.socket]:
    """A listening socket that nothing should connect to."""
    sock = socket.create_server((demo.LOOPBACK, 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize("args, words", [
    (["--rate", "inf"], "finite"),
    (["--rate", "nan"], "finite"),
    (["--rate", "1e12"], "rate must be"),
    (["--rate", "0"], "rate must be"),
    (["--rate", "-5"], "rate must be"),
    (["--payload", "1000000000000"], "payload must be"),
    (["--payload", "4"], "payload must be"),
    (["--clients", "0"], "clients must be"),
    (["--duration", "inf"], "finite"),
    (["--json", "/nonexistent-netserv-dir/out.json"], "does not exist"),
    (["--csv", "/nonexistent-netserv-dir/out.csv"], "does not exist"),
    (["--transport", "udp", "--per-connection"], "per_connection"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bad_input_is_refused_before_the_run(trap: socket.socket, args: list[str],
                                             words: str) -> None:
    host, port = trap.getsockname()
    proc = bench_command("--connect", f"{host}:{port}", "--duration", "0.2", *args)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert nobody_connected(trap)


@pytest.mark.parametrize("args, words", [
    (["--connect", "192.0.2.1:7"], "loopback"),
    (["--connect", "[2001:db8::1]:7"], "loopback"),
    (["--connect", "nowhere"], "HOST:PORT"),
    (["--model", "pool", "--impl", "stdlib"], "stdlib has no ThreadPoolTCPServer"),
    (["--protocol", "http"], "--connect"),
    (["--model", "no-such-model"], "invalid choice"),
])
def test_bad_target_or_server_is_refused_before_the_run(args: list[str], words: str) -> None:
    proc = bench_command("--duration", "0.2", *args)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_run_without_any_reply_fails_with_a_hint(trap: socket.socket) -> None:
    # The trap listens but never accepts: connections complete in its
    # backlog, the requests are sent, and nothing ever answers.
    host, port = trap.getsockname()
    proc = bench_command("--connect", f"{host}:{port}", "--clients", "2", "--duration", "0.3",
                         "--warmup", "0", "--reply-timeout", "0.3", "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert "no request got a reply" in proc.stderr and "is the server running" in proc.stderr
    assert "timeout" in proc.stderr and "Traceback" not in proc.stderr


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_connect_over_ipv6_loopback(tmp_path: pathlib.Path) -> None:
    class Server(netserv.ThreadingTCPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

    server = Server(("::1", 0), demo.StreamEchoHandler)
    out = tmp_path / "v6.json"
    with demo.running(server):
        port = server.server_address[1]
        proc = bench_command("--connect", f"[::1]:{port}", "--clients", "2", "--duration", "0.3",
                             "--warmup", "0", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["target"] == f"::1:{port}"
    assert result["completed"] > 0 and result["errors"] == 0


def test_bench_servers_run_without_nagle_unless_asked() -> None:
    for nagle in (False, True):
        with (bench.ServerProcess("threading", nagle=nagle) as server,
              socket.create_connection(server.address, timeout=10) as sock):
            sock.sendall(b"ping\n")
            assert sock.recv(100) == b"ping\n"
        assert server.ready["handler"].startswith("NoDelay") != nagle


@pytest.mark.parametrize("model", ["threading", "select"])
@pytest.mark.parametrize("nodelay", [True, False])
def test_demo_echo_handlers_set_tcp_nodelay_when_asked(model: str, nodelay: bool) -> None:
    base: Any = demo.echo_handler(model, "tcp", nodelay=nodelay)
    seen: list[int] = []
    if model == "select":
        class Probe(base):  # type: ignore[misc,valid-type]
            __slots__ = ()

            def connection_made(self) -> None:
                super().connection_made()
                seen.append(self.request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    else:
        class Probe(base):  # type: ignore[misc,valid-type,no-redef]
            def handle(self) -> None:
                seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                super().handle()

    with demo.running(demo.make_server(model, "tcp", handler=Probe)) as server:
        assert demo.echo_once(server, b"ping\n") == b"ping\n"
    assert len(seen) == 1 and bool(seen[0]) == nodelay
