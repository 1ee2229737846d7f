"""netserv.measure.load --protocol http: keep-alive GETs against http.server running on netserv.

The servers are http.server handlers on netserv's ThreadingTCPServer, on
127.0.0.1 port 0, in this process; the load generator's workers are
separate processes.
"""

from __future__ import annotations

import http.server
from typing import Any

import pytest

import netserv
from netserv.lab import demo
from netserv.measure import load

BODY = b"hello from netserv\n"


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with Content-Length: the connection stays open between requests."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits
    # for the ACK of the headers, which the client delays by up to 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)  # type: ignore[attr-defined]
        status = 404 if self.path == "/missing" else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line on stderr per request


class ChunkedHandler(KeepAliveHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))


class ClosingHandler(KeepAliveHandler):
    """HTTP/1.0, the BaseHTTPRequestHandler default: one request per connection."""

    protocol_version = "HTTP/1.0"


class Server(netserv.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False


def http_run(handler: type, **options: Any) -> dict[str, Any]:
    server = Server((demo.LOOPBACK, 0), handler)
    server.connections = set()  # type: ignore[attr-defined]
    with demo.running(server):
        spec = load.LoadSpec(server.server_address, "tcp", protocol="http", duration=0.5,
                             warmup=0.1, quiet=True, processes=1, **options)
        result = load.run(spec)
    result["server_connections"] = len(server.connections)  # type: ignore[attr-defined]
    return result


@pytest.mark.parametrize("rate", [None, 200.0], ids=["closed", "open"])
def test_http_keep_alive_requests_are_timed(rate: float | None) -> None:
    result = http_run(KeepAliveHandler, clients=2, rate=rate)
    assert result["protocol"] == "http" and result["errors"] == 0
    # Open loop: the schedule sets the count; closed loop: far more than
    # the ~25 that Nagle's 40 ms delays would let through.
    assert result["completed"] > (0.9 * rate * 0.5 if rate else 100)
    assert result["clients_without_reply"] == 0
    assert result["latency_ms"]["p50"] > 0
    # Keep-alive: two clients, two connections, however many requests.
    assert result["server_connections"] == 2
    if rate is not None:
        assert result["goodput"] <= result["offered_rate"]
        assert result["offered"] == pytest.approx(rate * 0.5, abs=2)


def test_an_error_status_is_counted() -> None:
    result = http_run(KeepAliveHandler, clients=1, path="/missing")
    assert result["completed"] == 0
    assert result["error_kinds"]["http_status"] > 10


def test_chunked_responses_are_refused_clearly() -> None:
    result = http_run(ChunkedHandler, clients=1)
    assert result["completed"] == 0 and result["error_kinds"]["protocol"] > 0
    assert "chunked" in result["note"]


def test_a_server_that_closes_each_connection_is_still_measured() -> None:
    result = http_run(ClosingHandler, clients=2)
    assert result["completed"] > 10 and result["errors"] == 0
    assert result["server_connections"] > 10  # one per request


def test_http_is_for_streams_only() -> None:
    with pytest.raises(ValueError, match="stream"):
        load.LoadSpec((demo.LOOPBACK, 1), "udp", protocol="http").validate()
