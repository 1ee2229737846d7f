"""``python -m netserv serve``: run a demo echo server on loopback until Ctrl-C.

Useful with ``python -m netserv bench --connect HOST:PORT`` or with
``nc 127.0.0.1 PORT`` in a terminal next to a notebook.

The echo handler is netserv.lab.demo's for the model, transport and impl
(a stdlib server gets one built on socketserver's handler classes), with
Nagle's algorithm off (TCP_NODELAY) unless ``--nagle`` is given: replies are
small and, when requests are pipelined, Nagle plus the client's delayed ACK
would add ~40 ms to them, which is not the server model's doing.

With ``--control`` (how ``bench`` runs its server in a separate process) the
first line on stdout is JSON, ``{"ready": true, "address": ..., ...}``, written
once the socket listens; then each line ``cpu`` on stdin is answered with the
process's CPU seconds so far, and ``stop`` (or end of input) shuts the
server down, waits for its threads or children, answers with the final CPU
seconds (reaped children included) and exits.

With ``--tls`` the server is netserv's TLS server of the model
(netserv.tls), with a throw-away certificate of the course's CA
(netserv.lab.certs, which needs trustme): the CA certificate is written
to a temporary file for as long as the server runs, and its path is
printed (``cafile`` in the ready line), ready for ``bench --tls --cafile``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import threading
from typing import Any

from .. import tls
from ..lab import demo
from .cli import EXIT_FAILED, Parser, fail


def cpu_seconds() -> dict[str, float]:
    """CPU time of this process and of its reaped children (forked handlers)."""
    t = os.times()
    return {"self": t.user + t.system, "children": t.children_user + t.children_system}


def _control(server: Any) -> None:
    """Answer ``cpu`` lines on stdin; ``stop`` or end of input stops the server."""
    for line in sys.stdin:
        command = line.strip()
        if command == "cpu":
            print(json.dumps({"cpu": cpu_seconds()}), flush=True)
        elif command == "stop":
            break
    server.shutdown()


def main(argv: list[str]) -> int:
    """Serve until Ctrl-C (or ``stop``); exit 2 for a server that does not exist, 1 if
    it cannot be started (binding failed), one line on stderr either way."""
    parser = Parser(prog="python -m netserv serve", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=list(demo.MODELS), default="threading")
    parser.add_argument("--transport", choices=list(demo.TRANSPORTS), default="tcp")
    parser.add_argument("--impl", choices=demo.IMPLS, default="netserv")
    parser.add_argument("--nagle", action="store_true",
                        help="leave Nagle's algorithm on (default: TCP_NODELAY)")
    parser.add_argument("--control", action="store_true",
                        help="machine-readable: JSON ready line, cpu/stop commands on stdin")
    parser.add_argument("--tls", action="store_true",
                        help="serve TLS with a throw-away course CA; prints its CA file")
    args = parser.parse_args(argv)
    try:
        cls = demo.server_class(args.model, args.transport, args.impl)
        if args.tls:
            cls = _tls_class(cls, args.impl)
    except ValueError as exc:  # e.g. --model prefork --impl stdlib: no such class
        return fail("serve", str(exc))
    with contextlib.ExitStack() as stack:
        cafile = None
        if args.tls:
            from ..lab.certs import CourseCA  # trustme: only when asked for
            try:
                ca = CourseCA()
            except ImportError as exc:
                return fail("serve", str(exc))
            cafile = stack.enter_context(ca.files()).ca
            cls = functools.partial(cls, context=ca.server_context())  # type: ignore[assignment]
        return _serve(args, cls, cafile)
    return EXIT_FAILED  # not reached: the block returns (mypy cannot tell)


def _tls_class(cls: type, impl: str) -> type:
    """netserv's TLS server of the same model and transport (ValueError: none)."""
    tls_cls: type | None = getattr(tls, "TLS" + cls.__name__, None)
    if impl != "netserv" or tls_cls is None:
        raise ValueError(f"--tls: netserv has no TLS {cls.__name__} "
                         f"(impl {impl}); see netserv.tls")
    return tls_cls


def _serve(args: argparse.Namespace, cls: Any, cafile: str | None) -> int:
    handler = demo.echo_handler(args.model, args.transport, args.impl, nodelay=not args.nagle)
    try:
        server = demo.bind(cls, args.transport, handler)
    except OSError as exc:
        return fail("serve", f"cannot start the server: {exc}", EXIT_FAILED)
    if args.control:
        print(json.dumps({"ready": True, "address": server.server_address,
                          "transport": args.transport, "class": type(server).__name__,
                          "handler": handler.__name__, "nagle": args.nagle,
                          "cafile": cafile, "pid": os.getpid()}), flush=True)
        controller = threading.Thread(target=_control, args=(server,), daemon=True)
        controller.start()
    else:
        print(f"{type(server).__name__} ({args.impl}) echoing on {server.server_address}; "
              f"Ctrl-C stops it", flush=True)
        if cafile:
            print(f"TLS: trust the CA file {cafile} (removed when the server stops)",
                  flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        demo.cleanup(server)
    if args.control:
        print(json.dumps({"stopped": True, "cpu": cpu_seconds()}), flush=True)
    return 0
