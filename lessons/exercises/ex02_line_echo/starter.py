# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 02: a numbered, upper-casing line echo (StreamRequestHandler).

The protocol, one TCP connection at a time:

* the client sends lines ending in ``\\n`` (``\\r\\n`` is accepted too);
* for each line the server replies ``<n> <LINE>\\n``: ``n`` counts the lines
  of *this connection* from 1, and LINE is the line without its line ending,
  with ASCII letters upper-cased (``bytes.upper()``: other bytes, even ones
  that are not UTF-8, pass unchanged);
* a last line without a newline (the client half-closed) is answered too;
* the line ``QUIT`` (any case) is answered ``<n> BYE\\n``, and then the server
  closes the connection.

Read first: lessons/02_transports.md and notebooks/02_tcp_server.ipynb,
netserv/handlers.py (StreamRequestHandler: rfile, wfile).
"""

from __future__ import annotations

from typing import Any

import netserv


class NumberedUpperHandler(netserv.StreamRequestHandler):
    """Serves one connection: reads lines from self.rfile, writes replies to self.wfile."""

    def handle(self) -> None:
        # TODO: read lines from self.rfile; reply b"<n> <LINE>\n" to each; stop after QUIT
        raise NotImplementedError("TODO: read lines from self.rfile; reply b\"<n> <LINE>\\n\" to each; stop after QUIT")


def make_server(address: Any = ("127.0.0.1", 0)) -> netserv.TCPServer:
    """A synchronous TCP server with the handler above (bound and listening)."""
    return netserv.TCPServer(address, NumberedUpperHandler)
