"""netserv.measure.load: the generator cannot hide a stall, a deaf server or lost requests.

The servers here run in this process (netserv.lab.demo.running); the load
generator's workers are separate processes, which run() always waits for.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from netserv.handlers import StreamRequestHandler
from netserv.lab import demo
from netserv.measure import load
from netserv.measure.spec import WorkerSpec

#: How long the stall server stops answering, once (the issue's figure).
STALL_SECONDS = 1.0
#: When the stall starts, counted from the first request the server sees:
#: after the warm-up, well inside the measured window.
WARMUP = 0.5
STALL_AFTER = WARMUP + 1.5
#: Open-loop rate for the stall test: every request due during the stall is
#: delayed, i.e. ~STALL_SECONDS * RATE of RATE * 5 s, far more than 1 %.
RATE = 200.0


class StallOnceHandler(StreamRequestHandler):
    """Echo lines; once, STALL_AFTER s after the first request, every handler
    blocks until a timer releases them STALL_SECONDS later."""

    def handle(self) -> None:
        server: Any = self.server
        for line in self.rfile:
            with server.stall_lock:
                now = time.monotonic()
                if server.first_request is None:
                    server.first_request = now
                if not server.stall_started and now >= server.first_request + STALL_AFTER:
                    server.stall_started = True
                    server.release_timer = threading.Timer(STALL_SECONDS, server.released.set)
                    server.release_timer.start()
            if server.stall_started:
                server.released.wait()  # set by the timer: the stall itself
            self.wfile.write(line)


def stall_server() -> Any:
    server = demo.make_server("threading", "tcp", handler=StallOnceHandler, daemon_threads=True)
    server.stall_lock = threading.Lock()
    server.first_request = None
    server.stall_started = False
    server.released = threading.Event()
    server.release_timer = None
    return server


def run_against_stall(rate: float | None) -> dict[str, Any]:
    server = stall_server()
    try:
        with demo.running(server):
            result = load.run(load.LoadSpec(server.server_address, "tcp", clients=4,
                                            duration=5.0, warmup=WARMUP, rate=rate,
                                            processes=1, quiet=True))
    finally:
        if server.release_timer is not None:
            server.release_timer.cancel()
            server.release_timer.join()
    assert server.stall_started, "the server never stalled: the test proves nothing"
    return result


@pytest.mark.timeout(60)
def test_open_loop_p99_shows_a_stall_that_closed_loop_hides() -> None:
    open_loop = run_against_stall(RATE)
    closed_loop = run_against_stall(None)
    for result in (open_loop, closed_loop):
        assert result["errors"] == 0 and result["clients_without_reply"] == 0
        # Both saw the stall itself: the slowest request waited for it.
        assert result["latency_ms"]["max"] > 0.5 * STALL_SECONDS * 1e3
    # Open loop: every request due during the stall waited, so p99 is of
    # the stall's order. Closed loop: only one request per client waited.
    assert open_loop["latency_ms"]["p99"] > 0.5 * STALL_SECONDS * 1e3
    assert open_loop["latency_ms"]["p99"] > 10 * closed_loop["latency_ms"]["p99"]
    assert open_loop["latency_ms"]["p90"] > 10 * closed_loop["latency_ms"]["p90"]


class CountingHandler(StreamRequestHandler):
    """Echo lines and note when each was answered (monotonic clock)."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)
            self.server.answered.append(time.monotonic())


def test_throughput_agrees_with_the_servers_own_count() -> None:
    server = demo.make_server("threading", "tcp", handler=CountingHandler)
    server.answered = []
    with demo.running(server):
        result = load.run(load.LoadSpec(server.server_address, "tcp", clients=4,
                                        duration=1.0, warmup=0.3, quiet=True))
    start, end = result["window"]["start"], result["window"]["end"]
    counted = sum(start <= t < end for t in server.answered)
    assert result["completed"] > 100
    assert abs(counted - result["completed"]) <= 0.25 * result["completed"]
    assert result["replies_total"] == len(server.answered)


def test_a_server_that_serves_one_client_at_a_time_cannot_hide() -> None:
    # The synchronous server serves the first persistent connection until it
    # closes; the other clients wait in the backlog and never get a reply.
    with demo.running(demo.make_server("sync", "tcp")) as server:
        # One worker process, so the served client's connection stays open
        # until the very end of the run.
        result = load.run(load.LoadSpec(server.server_address, "tcp", clients=3, duration=0.5,
                                        warmup=0.2, reply_timeout=0.3, processes=1, quiet=True))
    assert result["clients_without_reply"] == 2
    assert result["error_kinds"]["timeout"] >= 2
    assert result["completed"] > 0


@pytest.mark.parametrize("transport, options", [
    ("udp", {}), ("unix", {"per_connection": True}), ("tcp", {"rate": 300.0}),
    ("unix-dgram", {}),
])
def test_transports_and_modes(transport: str, options: dict[str, Any]) -> None:
    with demo.running(demo.make_server("threading", transport, daemon_threads=True)) as server:
        result = load.run(load.LoadSpec(server.server_address, transport, clients=2, duration=0.5,
                                        warmup=0.1, payload=100, quiet=True, **options))
    assert result["completed"] > 0 and result["clients_without_reply"] == 0
    assert result["error_kinds"]["mismatch"] == 0
    assert result["mode"] == ("open" if "rate" in options else "closed")
    if "rate" in options:
        # Open loop: the schedule, not the server, sets how many are sent.
        assert result["completed"] + result["errors"] == pytest.approx(300 * 0.5, abs=2)
    assert result["generator_cpu_per_request_us"] > 0


def test_max_requests_caps_the_run() -> None:
    with demo.running(demo.make_server("threading", "tcp")) as server:
        result = load.run(load.LoadSpec(server.server_address, "tcp", clients=2, duration=0.5,
                                        warmup=0.0, max_requests=50, processes=1, quiet=True))
    assert result["capped"] and result["requests_sent_total"] == 50


@pytest.mark.parametrize("address", [("10.0.0.1", 80), ("0.0.0.0", 80), ("example.org", 80)])
def test_refuses_anything_but_loopback(address: tuple[str, int]) -> None:
    with pytest.raises(ValueError, match="loopback"):
        load.run(load.LoadSpec(address, "tcp", duration=0.1))


def test_refuses_settings_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="payload"):
        load.LoadSpec(("127.0.0.1", 1), payload=4).validate()
    with pytest.raises(ValueError, match="per_connection"):
        load.LoadSpec(("127.0.0.1", 1), "udp", per_connection=True).validate()


class SlowHandler(StreamRequestHandler):
    """Echo each line after SLOW_SERVICE seconds: one client's capacity is 1/SLOW_SERVICE."""

    def handle(self) -> None:
        for line in self.rfile:
            time.sleep(SLOW_SERVICE)  # the service time itself, not a wait for a server
            self.wfile.write(line)


#: Service time of SlowHandler, and an open-loop rate three times what one
#: connection can then be served at.
SLOW_SERVICE = 0.01
OVERLOAD_RATE = 3 / SLOW_SERVICE


def test_goodput_excludes_the_drain_and_never_exceeds_the_offered_rate() -> None:
    server = demo.make_server("threading", "tcp", handler=SlowHandler, daemon_threads=True)
    with demo.running(server):
        result = load.run(load.LoadSpec(server.server_address, "tcp", clients=1, duration=1.0,
                                        warmup=0.2, rate=OVERLOAD_RATE, processes=1,
                                        quiet=True))
    # Every measured request ends answered in the window, answered in the
    # drain (backlog) or never (dropped).
    assert result["offered"] == (result["answered_in_window"] + result["backlog"]
                                 + result["dropped"])
    assert result["offered_rate"] == pytest.approx(OVERLOAD_RATE, rel=0.05)
    assert result["goodput"] == result["throughput_rps"] <= result["offered_rate"]
    # Past the knee: the server answers ~1/SLOW_SERVICE per second; the rest
    # waits in the backlog. Counting the drain would give the offered rate.
    assert result["goodput"] < 0.6 * result["offered_rate"]
    assert result["backlog"] + result["dropped"] > 0.4 * result["offered"]
    # Open loop keeps the coordinated-omission comparison: the latency from
    # the actual send hides the queue that the latency from the schedule shows.
    # The uncorrected clock starts at the previous reply: it sees the service
    # time, about SLOW_SERVICE, and none of the queue. (p90: replies that a
    # descheduled generator reads together count ~0, the lower ones.)
    uncorrected = result["latency_uncorrected_ms"]["p90"]
    assert 0.5 * SLOW_SERVICE * 1e3 < uncorrected < 0.2 * result["latency_ms"]["p50"]


def test_closed_loop_accounting() -> None:
    with demo.running(demo.make_server("threading", "tcp", daemon_threads=True)) as server:
        result = load.run(load.LoadSpec(server.server_address, "tcp", clients=2, duration=0.5,
                                        warmup=0.1, quiet=True))
    assert result["offered"] == (result["answered_in_window"] + result["backlog"]
                                 + result["dropped"])
    assert 0 < result["goodput"] <= result["offered_rate"]
    assert result["latency_uncorrected_ms"] is None and result["generator_lag_ms"] is None


def test_worker_specs_share_the_clients_and_travel_as_json() -> None:
    spec = load.LoadSpec(("localhost", 8080), clients=7, processes=3, max_requests=10)
    spec.validate()
    assert spec.address == ("127.0.0.1", 8080)  # a name that could resolve to ::1 is pinned
    shares = spec.worker_specs()
    assert [(w.first_client, w.clients) for w in shares] == [(0, 3), (3, 2), (5, 2)]
    assert all(w.max_requests == 4 for w in shares)
    back = WorkerSpec.from_json(shares[1].to_json())
    assert back == shares[1] and isinstance(back.run, load.LoadSpec)
    assert back.run.address == ("127.0.0.1", 8080)


@pytest.mark.parametrize("field, value, words", [
    ("rate", float("inf"), "rate"), ("rate", 1e12, "rate"), ("rate", 0.0, "rate"),
    ("payload", 10**12, "payload"), ("clients", 0, "clients"), ("processes", 0, "processes"),
    ("duration", float("nan"), "duration"), ("protocol", "smtp", "protocol"),
])
def test_refuses_values_out_of_bounds(field: str, value: Any, words: str) -> None:
    spec = load.LoadSpec(("127.0.0.1", 1), **{field: value})
    with pytest.raises(ValueError, match=words):
        spec.validate()
