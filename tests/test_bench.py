"""python -m netserv bench: the command line, its JSON and CSV, a server in its own process."""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess
import sys

import pytest

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
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "threading" in proc.stdout and "p99" in proc.stdout
    result = json.loads(out.read_text())
    assert REQUIRED <= set(result)
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


def test_connect_refuses_a_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--connect", "192.0.2.1:7", "--duration", "0.1"]) == 1
    assert "loopback" in capsys.readouterr().err


def test_a_server_that_cannot_start_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    # The standard module has no thread-pool server.
    assert bench.main(["--model", "pool", "--impl", "stdlib", "--duration", "0.1"]) == 1
    assert "server did not start" in capsys.readouterr().err


def test_format_table_one_line_per_result() -> None:
    result = {"model": "sync", "impl": "netserv", "transport": "tcp", "mode": "open",
              "clients": 1, "rate": 100.0, "throughput_rps": 99.0, "errors": 0,
              "latency_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0},
              "generator_cpu_per_request_us": None, "server_cpu_per_request_us": 5.0}
    lines = bench.format_table([result, result]).splitlines()
    assert len(lines) == 4 and lines[2].split()[:4] == ["sync", "netserv", "tcp", "open"]
