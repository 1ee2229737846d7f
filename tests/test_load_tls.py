"""netserv.measure.load with tls: line and HTTP requests over TLS, trusting a CA file.

The servers are netserv's TLS threading and event-driven servers on
127.0.0.1 port 0, in this process, with the course's throw-away CA
(netserv.lab.certs); the load generator's workers are separate processes
that trust the CA file CourseCA.files() writes.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import netserv
from netserv import tls
from netserv.eventdriven import LineEchoHandler
from netserv.events import LineHandler
from netserv.lab import demo
from netserv.lab.certs import CourseCA
from netserv.measure import load

import support

pytest.importorskip("trustme")

BODY = b"hello over tls\n"


class LineEcho(netserv.StreamRequestHandler):
    """Send every line back (the threading server's handler)."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


class KeepAliveHTTP(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with Content-Length; closes when the request asks for it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line on stderr per request


class EventHTTP(LineHandler):
    """The same HTTP/1.1 answers on the event-driven model: a reply per blank line."""

    __slots__ = ("closing",)

    def connection_made(self) -> None:
        self.closing = False

    def line_received(self, line: bytes) -> None:
        if line.lower().startswith(b"connection: close"):
            self.closing = True
        if line != b"\r\n":
            return
        close = b"Connection: close\r\n" if self.closing else b""
        self.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(BODY), close, BODY))
        if self.closing:
            self.close()


class Threading(tls.TLSThreadingTCPServer):
    daemon_threads = True
    block_on_close = False


SERVERS: dict[str, tuple[type, dict[str, type]]] = {
    "threading": (Threading, {"line": LineEcho, "http": KeepAliveHTTP}),
    "eventdriven": (tls.TLSEventDrivenTCPServer, {"line": LineEchoHandler, "http": EventHTTP}),
}


@pytest.fixture(scope="module")
def ca() -> CourseCA:
    return CourseCA()


@pytest.fixture(scope="module")
def cafile(ca: CourseCA) -> Iterator[str]:
    with ca.files() as files:
        yield files.ca


@contextlib.contextmanager
def tls_server(ca: CourseCA, model: str, protocol: str) -> Iterator[Any]:
    cls, handlers = SERVERS[model]
    server = cls((demo.LOOPBACK, 0), handlers[protocol], context=ca.server_context())
    with support.serving(server):
        yield server


def tls_run(address: Any, cafile: str, **options: Any) -> dict[str, Any]:
    spec = load.LoadSpec(address, "tcp", duration=0.5, warmup=0.1, quiet=True, processes=1,
                         clients=2, tls=True, cafile=cafile, **options)
    return load.run(spec)


@pytest.mark.parametrize("per_connection", [False, True], ids=["keep-alive", "per-connection"])
@pytest.mark.parametrize("protocol", ["line", "http"])
@pytest.mark.parametrize("model", list(SERVERS))
def test_tls_requests_complete_without_errors(ca: CourseCA, cafile: str, model: str,
                                              protocol: str, per_connection: bool) -> None:
    with tls_server(ca, model, protocol) as server:
        result = tls_run(server.server_address, cafile, protocol=protocol,
                         per_connection=per_connection)
    assert result["errors"] == 0, result["error_kinds"]
    assert result["completed"] > 10 and result["clients_without_reply"] == 0
    assert result["generator_cpu_per_request_us"] is not None
    assert result["tls"] is True


def test_open_loop_over_tls_keeps_its_schedule(ca: CourseCA, cafile: str) -> None:
    with tls_server(ca, "eventdriven", "line") as server:
        result = tls_run(server.server_address, cafile, rate=200.0)
    assert result["errors"] == 0, result["error_kinds"]
    assert result["completed"] > 0.9 * 200 * 0.5


@pytest.mark.parametrize("model", list(SERVERS))
def test_a_server_of_another_ca_gives_handshake_errors(ca: CourseCA, model: str,
                                                       tmp_path: pathlib.Path) -> None:
    stranger = tmp_path / "other-ca.pem"
    stranger.write_bytes(CourseCA().ca_pem())
    with tls_server(ca, model, "line") as server:
        result = tls_run(server.server_address, str(stranger), reply_timeout=1.0)
    assert result["completed"] == 0
    assert result["error_kinds"]["handshake"] > 0
    assert result["errors"] == sum(result["error_kinds"].values())


class PlainGreeting(netserv.StreamRequestHandler):
    """A plain-text server that speaks first (as SMTP or FTP do)."""

    def handle(self) -> None:
        self.wfile.write(b"220 plain text here, no TLS\r\n")
        self.rfile.read()


def test_tls_to_a_plain_server_is_a_handshake_error(cafile: str) -> None:
    server = netserv.ThreadingTCPServer((demo.LOOPBACK, 0), PlainGreeting)
    server.daemon_threads = True
    with support.serving(server):
        result = tls_run(server.server_address, cafile, reply_timeout=1.0)
    assert result["completed"] == 0 and result["error_kinds"]["handshake"] > 0


@pytest.mark.parametrize("options, words", [
    ({"tls": True}, "tls needs cafile"),
    ({"cafile": "ca.pem"}, "without tls"),
    ({"tls": True, "cafile": "/nonexistent-netserv-dir/ca.pem"}, "No such file"),
    ({"tls": True, "cafile": "/"}, "cannot load"),
    ({"tls": True, "cafile": __file__}, "cannot load"),
])
def test_spec_refuses_tls_it_cannot_run(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load.LoadSpec(("127.0.0.1", 1), "tcp", **options).validate()


def test_tls_over_datagrams_is_refused(cafile: str) -> None:
    with pytest.raises(ValueError, match="stream transport"):
        load.LoadSpec(("127.0.0.1", 1), "udp", tls=True, cafile=cafile).validate()


def bench_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netserv", "bench", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("args, words", [
    (["--tls"], "--tls needs --cafile"),
    (["--cafile", "ca.pem"], "give it with --tls"),
    (["--tls", "--cafile", "/nonexistent-netserv-dir/ca.pem"], "No such file"),
    (["--tls", "--cafile", __file__], "cannot load a CA certificate"),
    (["--tls", "--cafile", "CAFILE", "--transport", "udp"], "stream transport"),
    (["--tls", "--cafile", "CAFILE", "--no-connect"], "--tls needs --connect"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bench_refuses_bad_tls_options(cafile: str, args: list[str], words: str) -> None:
    args = [cafile if a == "CAFILE" else a for a in args]
    if "--no-connect" in args:
        args.remove("--no-connect")
    else:
        args = ["--connect", "127.0.0.1:1", *args]
    proc = bench_command("--duration", "0.2", *args)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bench_drives_a_tls_server(ca: CourseCA, cafile: str) -> None:
    with tls_server(ca, "eventdriven", "line") as server:
        host, port = server.server_address
        proc = bench_command("--connect", f"{host}:{port}", "--tls", "--cafile", cafile,
                             "--clients", "2", "--duration", "0.3", "--warmup", "0.1",
                             "--quiet", "--processes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "tcp+tls" in proc.stdout


def test_serve_tls_and_bench_tls_work_together() -> None:
    server = subprocess.Popen([sys.executable, "-m", "netserv", "serve", "--control", "--tls",
                               "--model", "select"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    try:
        ready = json.loads(server.stdout.readline())
        assert ready["class"] == "TLSEventDrivenTCPServer"
        cafile = ready["cafile"]
        assert pathlib.Path(cafile).is_file()
        host, port = ready["address"]
        proc = bench_command("--connect", f"{host}:{port}", "--tls", "--cafile", cafile,
                             "--per-connection", "--clients", "2", "--duration", "0.3",
                             "--warmup", "0.1", "--quiet", "--processes", "1")
        assert proc.returncode == 0, proc.stderr
        assert "tcp+tls" in proc.stdout
    finally:
        server.stdin.write("stop\n")
        server.stdin.close()
        server.wait(60)
        server.stdout.close()
    assert not pathlib.Path(cafile).exists()  # the throw-away CA is gone with the server


@pytest.mark.parametrize("args, words", [
    (["--impl", "stdlib"], "no TLS"),
    (["--transport", "udp"], "no TLS"),
])
def test_serve_refuses_tls_it_has_not(args: list[str], words: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "netserv", "serve", "--tls", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
