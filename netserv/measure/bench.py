"""``python -m netserv bench``: measure one echo server under load.

Theory of operation
-------------------
A benchmark is three processes apart: the *server* (``python -m netserv
serve --control``, a demo echo server of the chosen model, transport and
implementation), and the *load generator*'s workers (netserv.measure.load). The
server runs alone in its process so that it has a GIL of its own and its
CPU time can be read: before the load starts and after it stops, bench
asks the server for its CPU seconds (forked children included, once reaped
at the end), and reports server CPU per request next to the generator's.

``--connect HOST:PORT`` (or a socket path) drives a server that is already
running instead (server CPU is then unknown). Either way only loopback
targets are accepted.

The result is the load generator's (see netserv.measure.load for every
field: offered_rate, goodput, backlog, dropped, latencies...) plus
``model``, ``impl``, ``nagle`` and ``server_cpu_per_request_us``; ``--json``
and ``--csv`` save it, and a short table is printed.

Servers started here run with Nagle's algorithm off (TCP_NODELAY) unless
``--nagle`` is given, to show its effect once: see netserv.measure.serve.
``--protocol http`` drives a running HTTP/1.1 server (``--connect``) with
keep-alive GET requests; the demo servers speak lines only. ``--tls
--cafile FILE`` speaks either protocol over TLS to a running TLS server
(``--connect``), trusting the CA certificate in FILE (netserv.measure.loadtls);
a handshake that fails is counted as a ``handshake`` error.

Command-line contract: every bad input (a rate of zero, infinity or beyond
MAX_RATE, a payload beyond MAX_PAYLOAD, a target off loopback, an output
file in a missing directory, a model the impl lacks...) is refused before
anything starts or connects, with one line on stderr and exit status 2, as
argparse does. A run in which no request got a reply exits with status 1
and a hint; so does a server that does not start or a worker that fails.

Resource handling: the server process is always stopped and waited for,
also when the run fails. Error handling: a server that does not start
(an unknown model on this system, say) raises RuntimeError with its
message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import subprocess
import sys
import tempfile
from typing import Any, Self

from ..lab import demo
from . import load
from .cli import EXIT_FAILED, EXIT_USAGE, Parser, check_output, fail
from .spec import MAX_PAYLOAD, LoadSpec

__all__ = ["ServerProcess", "format_table", "main", "run_bench"]

#: Seconds a server process may take to start (an interpreter, an import,
#: a bind) and to stop (joining its handler threads or children).
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 30.0
#: Open loop: warn when the generator's own median lateness is this share
#: of the median latency it reports.
LAG_WARNING = 0.5
#: Exit statuses (netserv.measure.cli): bad input (refused before the run),
#: a run that failed: EXIT_USAGE, EXIT_FAILED.


class ServerProcess:
    """A demo echo server in a child process, driven over its stdin/stdout.

    Use as a context manager: the process is started on entry (returns once
    the socket listens) and stopped on exit (killed if it does not stop).
    """

    def __init__(self, model: str, transport: str = "tcp", impl: str = "netserv",
                 nagle: bool = False) -> None:
        self.args = [sys.executable, "-m", "netserv", "serve", "--control",
                     "--model", model, "--transport", transport, "--impl", impl]
        if nagle:
            self.args.append("--nagle")
        self.proc: subprocess.Popen[str] | None = None
        self.address: Any = None
        self.ready: dict[str, Any] = {}  # the server's ready line: address, class, handler...
        self.final_cpu: float | None = None
        self.errors: Any = None

    def __enter__(self) -> Self:
        env = dict(os.environ)
        here = os.path.abspath(__file__)  # .../netserv/measure/bench.py
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(here)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        # stderr goes to a file, not a pipe: a server printing many
        # tracebacks must never block on a pipe nobody reads.
        self.errors = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errors, text=True, env=env)
        try:
            ready = self._read(SERVER_START_TIMEOUT)
            if ready is None or not ready.get("ready"):
                raise RuntimeError(f"server did not start: {' '.join(self.args[2:])}\n"
                                   f"{self._stderr()}")
        except BaseException:
            self._kill()
            raise
        self.ready = ready
        address = ready["address"]
        self.address = address if isinstance(address, str) else tuple(address)
        return self

    def cpu(self) -> float:
        """CPU seconds the server process (and its reaped children) used so far."""
        self._send("cpu")
        reply = self._read(SERVER_START_TIMEOUT)
        if reply is None:
            raise RuntimeError(f"server stopped answering\n{self._stderr()}")
        return float(reply["cpu"]["self"] + reply["cpu"]["children"])

    def stop(self) -> float | None:
        """Stop the server; return its final CPU seconds (None if it did not stop cleanly)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.final_cpu
        self._send("stop")
        reply = self._read(SERVER_STOP_TIMEOUT)
        if reply is not None and "cpu" in reply:
            self.final_cpu = reply["cpu"]["self"] + reply["cpu"]["children"]
        return self.final_cpu

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._kill()

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited already; _read reports it

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """One JSON line from the server, or None on end of file or timeout."""
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line.strip() else None

    def _stderr(self) -> str:
        """What the server wrote to stderr, once it has exited (killed if need be)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.errors.seek(0)
        text: str = self.errors.read()
        return text.strip()

    def _kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.wait(SERVER_STOP_TIMEOUT if self.final_cpu is not None else 0.001)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout, self.errors):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass  # unflushed data for a process that is gone


def run_bench(model: str = "threading", impl: str = "netserv", transport: str = "tcp",
              *, connect: Any = None, nagle: bool = False,
              **load_options: Any) -> dict[str, Any]:
    """Start a server (unless ``connect`` is given), run the load, return the result.

    ``load_options`` are LoadSpec fields: clients, duration, warmup, rate,
    per_connection, payload, processes, max_requests, reply_timeout, quiet,
    protocol, path. ``nagle`` leaves Nagle's algorithm on in the server
    started here. The spec is validated (ValueError) before anything starts.
    """
    if connect is not None:
        result = load.run(load.LoadSpec(connect, transport, **load_options))
        result.update(model=model if model else None, impl=impl, server_cpu_per_request_us=None,
                      nagle=None)
        return result
    # Refuse a bad spec before a server starts: the address is filled in below.
    LoadSpec("/placeholder" if transport.startswith("unix") else ("127.0.0.1", 1),
             transport, **load_options).validate()
    demo.server_class(model, transport, impl)  # ValueError: no such server
    with ServerProcess(model, transport, impl, nagle) as server:
        cpu_before = server.cpu()
        result = load.run(load.LoadSpec(server.address, transport, **load_options))
        cpu_after = server.stop()
    replies = result["replies_total"]
    server_cpu = None
    if cpu_after is not None and replies:
        server_cpu = (cpu_after - cpu_before) / replies * 1e6
    result.update(model=model, impl=impl, server_cpu_per_request_us=server_cpu, nagle=nagle)
    return result


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: list[dict[str, Any]]) -> str:
    """A short plain-text table: one line per result.

    ``rate/s`` is the open-loop rate asked for, ``goodput`` the replies
    received inside the window per second (the drain excluded), ``backlog``
    and ``drop`` the measured requests answered only after the window, or
    never; ``silent`` is the number of clients that never got a reply;
    ``gen µs`` and ``srv µs`` are CPU microseconds per request of the load
    generator and of the server.
    """
    head = (f"{'model':<10} {'impl':<8} {'transport':<10} {'mode':<6} {'clients':>7} "
            f"{'rate/s':>8} {'goodput':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8} "
            f"{'max ms':>8} {'backlog':>7} {'drop':>6} {'errors':>6} {'silent':>6} "
            f"{'gen µs':>7} {'srv µs':>7}")
    lines = [head, "-" * len(head)]
    for r in results:
        lat = r["latency_ms"]
        lines.append(
            f"{r.get('model') or '-':<10} {r.get('impl') or '-':<8} "
            f"{r['transport'] + ('+tls' if r.get('tls') else ''):<10} "
            f"{r['mode']:<6} {r['clients']:>7} {_fmt(r['rate'], '.0f'):>8} "
            f"{r['throughput_rps']:>9.0f} {lat['p50']:>8.3f} {lat['p99']:>8.3f} "
            f"{lat['p999']:>8.3f} {lat['max']:>8.3f} {_fmt(r.get('backlog'), 'd'):>7} "
            f"{_fmt(r.get('dropped'), 'd'):>6} {r['errors']:>6} "
            f"{r.get('clients_without_reply', 0):>6} "
            f"{_fmt(r['generator_cpu_per_request_us'], '.1f'):>7} "
            f"{_fmt(r['server_cpu_per_request_us'], '.1f'):>7}")
    return "\n".join(lines)


def _parse_target(text: str, transport: str) -> Any:
    if transport.startswith("unix"):
        return text
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--connect wants HOST:PORT (IPv6: [::1]:PORT), got {text!r}")
    return (host.strip("[]"), int(port))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m netserv bench",
        description="Drive an echo server with the load generator and print latency figures.")
    parser.add_argument("--model", choices=list(demo.MODELS), default="threading")
    parser.add_argument("--impl", choices=demo.IMPLS, default="netserv")
    parser.add_argument("--transport", choices=list(demo.TRANSPORTS), default="tcp")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=_finite_float, default=5.0,
                        help="measured seconds (default 5)")
    parser.add_argument("--warmup", type=_finite_float, default=1.0,
                        help="unmeasured seconds first (default 1)")
    parser.add_argument("--rate", type=_finite_float, default=None,
                        help=f"open loop: total requests per second, at most "
                             f"{load.MAX_RATE:.0f} (default: closed loop)")
    parser.add_argument("--per-connection", action="store_true",
                        help="a new connection per request (streams only)")
    parser.add_argument("--payload", type=int, default=64,
                        help=f"bytes per request (default 64, at most {MAX_PAYLOAD})")
    parser.add_argument("--protocol", choices=load.PROTOCOLS, default="line",
                        help="line: echoed lines (default); http: HTTP/1.1 keep-alive GETs "
                             "(with --connect)")
    parser.add_argument("--path", default="/", help="http: the path to GET (default /)")
    parser.add_argument("--tls", action="store_true",
                        help="speak TLS (streams, with --connect and --cafile)")
    parser.add_argument("--cafile", metavar="FILE",
                        help="--tls: the CA certificate (PEM) to trust")
    parser.add_argument("--processes", type=int, default=None,
                        help="load generator processes (default: one per core)")
    parser.add_argument("--max-requests", type=int, default=load.DEFAULT_MAX_REQUESTS)
    parser.add_argument("--reply-timeout", type=_finite_float,
                        default=load.DEFAULT_REPLY_TIMEOUT,
                        help="seconds before a request without reply is a timeout (default 5)")
    parser.add_argument("--nagle", action="store_true",
                        help="leave Nagle's algorithm on in the server (default: TCP_NODELAY)")
    parser.add_argument("--connect", metavar="HOST:PORT",
                        help="drive a running server on loopback (or a socket path)")
    parser.add_argument("--json", metavar="FILE", help="save the result as JSON")
    parser.add_argument("--csv", metavar="FILE", help="save the result as CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _no_reply_hint(result: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in result["error_kinds"].items() if v) or "none"
    what = ("answer HTTP/1.1 with Content-Length" if result["protocol"] == "http"
            else "echo each line it receives")
    return (f"netserv bench: no request got a reply (errors: {kinds}); is the server running "
            f"at {result['target']}, and does it {what}?")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    options: dict[str, Any] = {
        "clients": args.clients, "duration": args.duration, "warmup": args.warmup,
        "rate": args.rate, "per_connection": args.per_connection, "payload": args.payload,
        "processes": args.processes, "max_requests": args.max_requests,
        "reply_timeout": args.reply_timeout, "quiet": args.quiet,
        "protocol": args.protocol, "path": args.path, "tls": args.tls, "cafile": args.cafile}
    if args.cafile is not None and not args.tls:
        return fail("bench", "--cafile is the CA a TLS client trusts: give it with --tls")
    if args.tls and args.cafile is None:
        return fail("bench", "--tls needs --cafile FILE: the CA certificate (PEM) to trust")
    try:
        check_output(args.json, "--json")
        check_output(args.csv, "--csv")
        connect = _parse_target(args.connect, args.transport) if args.connect else None
        if connect is not None:
            LoadSpec(connect, args.transport, **options).validate()
        elif args.protocol == "http":
            raise ValueError("--protocol http needs --connect: the demo servers echo lines")
        elif args.tls:
            raise ValueError("--tls needs --connect: the demo servers started here speak "
                             "plain TCP")
        else:
            LoadSpec("/placeholder" if args.transport.startswith("unix") else ("127.0.0.1", 1),
                     args.transport, **options).validate()
            demo.server_class(args.model, args.transport, args.impl)
    except ValueError as exc:
        print(f"netserv bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_bench(args.model, args.impl, args.transport, connect=connect,
                           nagle=args.nagle, **options)
    except (ValueError, RuntimeError) as exc:
        print(f"netserv bench: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.connect:
        result["model"] = result["impl"] = None  # a server we did not start
    try:
        if args.json:
            load.write_json(result, args.json)
        if args.csv:
            load.write_csv(result, args.csv)
    except OSError as exc:  # checked before the run; a full disk, a folder removed since
        print(f"netserv bench: cannot save the result: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not result["replies_total"]:
        print(_no_reply_hint(result), file=sys.stderr)
        return EXIT_FAILED
    print(format_table([result]))
    if result["note"]:
        print(f"note: {result['note']}")
    if result["clients_without_reply"]:
        print(f"warning: {result['clients_without_reply']} client(s) never got a reply")
    lag = result.get("generator_lag_ms")
    if lag and lag["p50"] > LAG_WARNING * result["latency_ms"]["p50"]:
        print(f"warning: the generator sent late (lag p50 {lag['p50']:.3f} ms): much of the "
              f"latency is the generator's or the machine's, not the server's")
    if result["generator_busy"] and result["generator_busy"] > 0.9:
        print("warning: the load generator was busy >90% of the time; figures may be "
              "limited by the generator (try --processes)")
    return 0
