"""What TLS costs on netserv, and who pays: one run prints every table.

    .venv/bin/python benchmarks/tls.py [--quick]

1. Handshakes per model: a new TLS connection per request (one line echoed),
   handshakes/s, and the CPU each side spends per connection (the server runs
   in a process of its own, so its CPU time is its own).
2. Requests/s on the threading server: a new connection per request, one
   connection kept alive, and a new connection per request that resumes the
   TLS session (a TLS 1.3 ticket): what keep-alive and resumption buy.
0. One client connected and silent (it never sends its ClientHello): how long another
   client's TLS request takes, median and spread of SILENT_REQUESTS, per model, beside the
   standard module's pattern (a ThreadingTCPServer whose listening socket is wrapped with
   handshake-on-connect), whose accept() waits for the silent client: it times out.
3. A TLS line echo on 64 established connections: server CPU per request of
   netserv's event-driven TLS server and of asyncio's TLS transport
   (asyncio.start_server(..., ssl=context) and a Protocol), their ratio, and
   the same ratio without TLS (the plain-TCP one of benchmarks/peers.py).

Loopback only; certificates from trustme (netserv.lab.certs), in memory.
Figures from a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import netserv  # noqa: E402
from netserv import tls  # noqa: E402
from netserv.eventdriven import EventDrivenTCPServer, LineEchoHandler  # noqa: E402
from netserv.lab.certs import CourseCA  # noqa: E402

#: Connections per handshake measurement, requests per keep-alive one, and
#: rounds of the 64-connection echo: enough for a stable mean on loopback in
#: a few seconds each; --quick divides them by QUICK_DIVISOR.
HANDSHAKES = 400
REQUESTS = 4000
ROUNDS = 200
ESTABLISHED = 64  # connections of the echo comparison (the peers benchmark's count)
QUICK_DIVISOR = 4
#: Requests timed while one client sits silent, and how long each may wait: the median of
#: five, with the fastest and slowest; a deaf server shows "timeout" instead.
SILENT_REQUESTS = 5
SILENT_TIMEOUT = 2.0
MODELS = ("threading", "pool", "eventdriven", "prefork", "forking")


class EchoHandler(netserv.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# -- the server process -------------------------------------------------------

class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.partial = b""

    def data_received(self, data: bytes) -> None:
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        if end:
            self.transport.write(data[:end])


def serve(kind: str, certfile: str) -> None:
    """Serve ``kind`` on loopback; print the port; answer "cpu" lines on stdin."""
    context: ssl.SSLContext | None = None
    if not kind.startswith("plain-"):
        context = tls.server_context(certfile)
    model = kind.removeprefix("plain-")
    if model == "stdlib-wrapped":
        serve_stdlib_wrapped(context)
        return
    if model == "asyncio":
        asyncio.run(serve_asyncio(context))
        return
    if context is None:
        server: Any = EventDrivenTCPServer(("127.0.0.1", 0), LineEchoHandler)
    else:
        cls = {"threading": tls.TLSThreadingTCPServer, "pool": tls.TLSThreadPoolTCPServer,
               "eventdriven": tls.TLSEventDrivenTCPServer,
               "prefork": getattr(tls, "TLSPreForkTCPServer", None),
               "forking": getattr(tls, "TLSForkingTCPServer", None)}[model]
        handler = LineEchoHandler if model == "eventdriven" else EchoHandler
        server = type(cls.__name__, (cls,), {"request_queue_size": 128, "daemon_threads": True,
                                             "block_on_close": False})(
            ("127.0.0.1", 0), handler, context=context)
    import threading
    thread = threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    answer_cpu_questions()
    server.shutdown()
    server.server_close()


def serve_stdlib_wrapped(context: ssl.SSLContext | None) -> None:
    """The standard module's pattern: the listening socket wrapped with handshake-on-connect,
    so that accept() performs each handshake in the serving thread."""
    import socketserver
    import threading

    assert context is not None

    class Wrapped(socketserver.ThreadingTCPServer):
        daemon_threads = True
        block_on_close = False

        def server_activate(self) -> None:
            super().server_activate()
            self.socket = context.wrap_socket(self.socket, server_side=True)

    server = Wrapped(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    answer_cpu_questions()
    # A handshake may still hold the loop (the silent client is gone by now): do not wait.
    server.socket.close()


async def serve_asyncio(context: ssl.SSLContext | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, answer_cpu_questions)
    server.close()


def answer_cpu_questions() -> None:
    """Reply to each "cpu" line with this process's CPU seconds, until EOF.

    For pre-forked workers, the children's CPU counts once they are reaped:
    the figures then come from the stop (see Server.stop)."""
    for line in sys.stdin:
        if line.strip() == "cpu":
            print(f"{cpu_seconds():.6f}", flush=True)


class Server:
    """A server process of one kind; cpu() asks it for its CPU seconds so far."""

    def __init__(self, kind: str, certfile: str) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", kind, certfile],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def cpu(self) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("cpu\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process.stdout.close()


# -- the client ----------------------------------------------------------------

def one_request(port: int, context: ssl.SSLContext, session: Any = None,
                timeout: float = 30) -> Any:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        # A client that sends right after its Finished: without NODELAY, Nagle holds
        # the line until the server ACKs, and a delayed ACK costs 40 ms.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
            sock.sendall(b"hello\n")
            assert sock.recv(100) == b"hello\n"
            return sock.session, sock.session_reused


def measure(server: Server, count: int, work: Any) -> tuple[float, float, float]:
    """(per second, server CPU ms, client CPU ms) per unit of ``work``, run ``count`` times."""
    server_before, client_before = server.cpu(), time.process_time()
    started = time.perf_counter()
    for _ in range(count):
        work()
    wall = time.perf_counter() - started
    server_ms = (server.cpu() - server_before) * 1000 / count
    client_ms = (time.process_time() - client_before) * 1000 / count
    return count / wall, server_ms, client_ms


def silent_client(ca: CourseCA, certfile: str) -> None:
    print(f"0. One client connected and silent: another client's TLS request, "
          f"{SILENT_REQUESTS} in a row ({SILENT_TIMEOUT:.0f} s timeout each)")
    print(f"{'server':<16} {'median ms':>10} {'fastest':>8} {'slowest':>8}")
    context = ca.client_context()
    for model in ("stdlib-wrapped", *MODELS):
        if model in ("prefork", "forking") and not hasattr(os, "fork"):
            continue
        server = Server(model, certfile)
        times: list[float | None] = []
        try:
            with socket.create_connection(("127.0.0.1", server.port)):  # silent
                for _ in range(SILENT_REQUESTS):
                    started = time.perf_counter()
                    try:
                        one_request(server.port, context, timeout=SILENT_TIMEOUT)
                        times.append((time.perf_counter() - started) * 1000)
                    except TimeoutError:
                        times.append(None)
        finally:
            server.stop()
        answered = sorted(t for t in times if t is not None)
        if len(answered) < len(times):
            print(f"{model:<16} {'timeout':>10}   ({len(times) - len(answered)} of "
                  f"{len(times)} timed out after {SILENT_TIMEOUT:.0f} s)")
        else:
            median = answered[len(answered) // 2]
            print(f"{model:<16} {median:>10.1f} {answered[0]:>8.1f} {answered[-1]:>8.1f}")
    print()


def handshakes(ca: CourseCA, certfile: str, count: int) -> None:
    print(f"1. TLS handshakes: a new connection per request ({count} each, one line echoed)")
    print(f"{'model':<12} {'handshakes/s':>13} {'server CPU ms':>14} {'client CPU ms':>14}")
    context = ca.client_context()
    for model in MODELS:
        if model in ("prefork", "forking") and not hasattr(os, "fork"):
            continue
        server = Server(model, certfile)
        try:
            rate, server_ms, client_ms = measure(
                server, count, lambda port=server.port: one_request(port, context))
        finally:
            server.stop()
        note = {"prefork": "  (workers' CPU not counted: they outlive the run)",
                "forking": "  (with each child's fork and exit)"}.get(model, "")
        print(f"{model:<12} {rate:>13.0f} {server_ms:>14.2f} {client_ms:>14.2f}{note}")


def keepalive_and_resumption(ca: CourseCA, certfile: str, count: int) -> None:
    print(f"\n2. Requests/s on the threading TLS server ({count} requests each)")
    print(f"{'how':<34} {'requests/s':>11} {'server CPU ms':>14} {'client CPU ms':>14}")
    context = ca.client_context()
    server = Server("threading", certfile)
    try:
        rows = [("new connection, full handshake", count // 10,
                 lambda: one_request(server.port, context))]
        session, _ = one_request(server.port, context)
        reused = []

        def resumed() -> None:
            _, was_reused = one_request(server.port, context, session)
            reused.append(was_reused)
        rows.append(("new connection, resumed session", count // 10, resumed))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        kept = context.wrap_socket(raw, server_hostname="localhost")

        def keepalive() -> None:
            kept.sendall(b"hello\n")
            assert kept.recv(100) == b"hello\n"
        rows.append(("one connection kept alive", count, keepalive))
        for name, n, work in rows:
            rate, server_ms, client_ms = measure(server, n, work)
            print(f"{name:<34} {rate:>11.0f} {server_ms:>14.3f} {client_ms:>14.3f}")
        kept.close()
        print(f"(sessions resumed: {sum(reused)} of {len(reused)})")
    finally:
        server.stop()


def echo_established(kind: str, certfile: str, context: ssl.SSLContext | None,
                     rounds: int) -> float:
    """Server CPU µs per request: ESTABLISHED connections, each sends a line per round."""
    server = Server(kind, certfile)
    try:
        socks = []
        for _ in range(ESTABLISHED):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            socks.append(context.wrap_socket(raw, server_hostname="localhost")
                         if context else raw)
        line = b"x" * 63 + b"\n"
        for sock in socks:  # warm up: every handshake done, every buffer allocated
            sock.sendall(line)
            assert sock.recv(100) == line
        before = server.cpu()
        with selectors.DefaultSelector() as selector:
            for _ in range(rounds):
                for sock in socks:
                    sock.sendall(line)
                for sock in socks:
                    got = sock.recv(100)
                    while not got.endswith(b"\n"):
                        got += sock.recv(100)
        del selector
        used = server.cpu() - before
        for sock in socks:
            sock.close()
    finally:
        server.stop()
    return used * 1e6 / (rounds * ESTABLISHED)


def established(ca: CourseCA, certfile: str, rounds: int) -> None:
    print(f"\n3. Line echo on {ESTABLISHED} established connections, {rounds} rounds: "
          f"server CPU per request")
    context = ca.client_context()
    ours_tls = echo_established("eventdriven", certfile, context, rounds)
    theirs_tls = echo_established("asyncio", certfile, context, rounds)
    ours_tcp = echo_established("plain-eventdriven", certfile, None, rounds)
    theirs_tcp = echo_established("plain-asyncio", certfile, None, rounds)
    print(f"{'':<10} {'netserv event-driven µs':>24} {'asyncio µs':>11} {'ratio':>6}")
    print(f"{'TLS':<10} {ours_tls:>24.1f} {theirs_tls:>11.1f} {ours_tls / theirs_tls:>6.2f}")
    print(f"{'plain TCP':<10} {ours_tcp:>24.1f} {theirs_tcp:>11.1f} {ours_tcp / theirs_tcp:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--silent-only", action="store_true",
                        help="only table 0 (one client connected and silent)")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "CERTFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    divisor = QUICK_DIVISOR if args.quick else 1
    ca = CourseCA()
    with ca.files() as files:
        silent_client(ca, files.cert)
        if args.silent_only:
            return
        handshakes(ca, files.cert, HANDSHAKES // divisor)
        keepalive_and_resumption(ca, files.cert, REQUESTS // divisor)
        established(ca, files.cert, ROUNDS // divisor)


if __name__ == "__main__":
    main()
