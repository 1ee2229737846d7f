# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 01: an allow-list in verify_request.

``AllowListServer(address, handler, allowed=[...])`` serves only clients
whose IP address is in ``allowed``. Each entry is an address
(``"127.0.0.1"``) or a network (``"127.0.0.0/31"``); an empty list allows
nobody. A client that is not allowed is closed unserved: its handler never
runs, it reads end-of-file at once, and its address is appended to
``server.denied``. An entry that is not an address or a network makes the
constructor raise ValueError *before* a socket is opened (nothing leaks).

The handler, ``GreetingHandler``, is given: it says ``hello <ip>\\n`` and
records the client in ``server.served``.

Read first: lessons/01_the_pipeline.md and notebooks/01_base_server.ipynb
(the pipeline: get_request, verify_request, process_request, ...),
BaseServer.verify_request in netserv/base.py, and the ipaddress module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import netserv


class GreetingHandler(netserv.StreamRequestHandler):
    def handle(self) -> None:
        self.server.served.append(self.client_address[0])
        self.wfile.write(b"hello %s\n" % self.client_address[0].encode())


class AllowListServer(netserv.ThreadingTCPServer):
    """A threading TCP server that serves only the clients on its allow-list."""

    def __init__(self, server_address: Any, RequestHandlerClass: Any,
                 allowed: Iterable[str] = ()) -> None:
        # TODO: parse every entry of allowed into self.networks; bad entries raise ValueError
        self.networks = []
        self.denied: list[str] = []
        self.served: list[str] = []
        super().__init__(server_address, RequestHandlerClass)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """True to serve the client; False to close it unserved (and note it in denied)."""
        # TODO: return True only for a client in self.networks; note the others in self.denied
        return True


def make_server(allowed: Iterable[str], address: Any = ("127.0.0.1", 0)) -> AllowListServer:
    return AllowListServer(address, GreetingHandler, allowed=allowed)
