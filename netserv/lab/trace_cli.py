"""``python -m netserv trace MODEL``: print the hooks one request runs.

Theory of operation
-------------------
The command builds a demo echo server by name (netserv.lab.demo), attaches a
Tracer (netserv.lab.trace), sends one line through it from a client on
loopback, stops and closes the server, and prints the tracer's summary: the
deterministic text that notebook 06 also shows. Nothing but loopback (or a
Unix socket in a temporary directory) is ever used, and exactly one request
is sent.

    python -m netserv trace MODEL [--transport T] [--impl netserv|stdlib]

Exit status: 0 after printing the summary, 2 when the model, transport or
implementation does not exist (argparse's own usage errors exit with 2 too),
1 when the demo server failed; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import demo
from .trace import Tracer, traced

__all__ = ["MESSAGE", "main", "trace_once"]

#: The one message the trace command sends: one line, echoed back.
MESSAGE = b"hello\n"


def trace_once(model: str = "sync", transport: str = "tcp", impl: str = "netserv") -> Tracer:
    """Serve one echo request on a traced demo server; return the (detached) tracer.

    The server runs in a thread (netserv.lab.demo.running) and is shut down and
    closed (children reaped) before this returns. Raises ValueError for an
    unknown or unavailable model/transport/impl, and RuntimeError if the
    echo came back wrong.
    """
    server = demo.make_server(model, transport, impl)
    try:
        with traced(server) as tracer, demo.running(server):
            reply = demo.echo_once(server, MESSAGE)
    except BaseException:
        demo.cleanup(server)  # running() cleans up, unless it never started
        raise
    if reply != MESSAGE:
        raise RuntimeError(f"the {model} echo server answered {reply!r} to {MESSAGE!r}")
    return tracer


def main(argv: list[str]) -> int:
    """Parse ``argv`` (without the command's name), trace one request, print the summary."""
    parser = argparse.ArgumentParser(
        prog="python -m netserv trace",
        description="Run one echo request through a demo server on loopback and print "
                    "the hooks it ran, in order, grouped by request and lane.")
    parser.add_argument("model", choices=list(demo.MODELS))
    parser.add_argument("--transport", choices=list(demo.TRANSPORTS), default="tcp")
    parser.add_argument("--impl", choices=demo.IMPLS, default="netserv")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # The demo forks from a process that also runs the serve loop's
        # thread; Python warns that fork() with threads may deadlock a child
        # that takes a lock some other thread held. The child here only
        # finishes its request and exits.
        warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork",
                                category=DeprecationWarning)
        try:
            tracer = trace_once(args.model, args.transport, args.impl)
        except ValueError as exc:
            print(f"netserv trace: {exc}", file=sys.stderr)
            return 2
        except (RuntimeError, OSError) as exc:  # the demo server failed: one line, no traceback
            print(f"netserv trace: {exc}", file=sys.stderr)
            return 1
    print(tracer.summary())
    return 0
