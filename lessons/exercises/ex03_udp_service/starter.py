# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 03: a tiny command service over UDP (DatagramRequestHandler).

The protocol: one request datagram, one reply datagram.

=====================  ==========================================
request                reply
=====================  ==========================================
``ECHO <text>``        ``OK <text>`` (text: any bytes, even empty)
``TIME``               ``OK <seconds since 1970, an integer>``
``UPTIME``             ``OK <whole seconds since the server started>``
anything else          ``ERR unknown command``
an empty datagram      ``ERR empty``
a truncated datagram   ``ERR too long``
=====================  ==========================================

Command names are case-insensitive (``echo hi`` works); a trailing ``\\n``
or ``\\r\\n`` after the request is ignored. Replies carry no newline.

A datagram longer than the server's ``max_packet_size`` (512 bytes here)
reaches the handler cut to that size: netserv marks it (``self.truncated``,
or ``netserv.is_truncated(self.packet)``) and the service must refuse it
rather than act on half a request.

Read first: lessons/02_transports.md and notebooks/03_udp_server.ipynb,
netserv/udp.py and DatagramRequestHandler in netserv/handlers.py.
"""

from __future__ import annotations

import time
from typing import Any

import netserv

#: Largest request read whole. Small, so that the checks can send a longer
#: one cheaply; a real service sizes it to its largest legal request.
MAX_REQUEST = 512


class CommandHandler(netserv.DatagramRequestHandler):
    """Serves one datagram: self.packet is the request; write the reply to self.wfile."""

    def handle(self) -> None:
        # TODO: refuse truncated and empty datagrams, then answer ECHO, TIME, UPTIME; ERR otherwise
        raise NotImplementedError("TODO: refuse truncated and empty datagrams, then answer ECHO, TIME, UPTIME; ERR otherwise")


class CommandServer(netserv.UDPServer):
    """A UDP server that remembers when it started (time.monotonic())."""

    max_packet_size = MAX_REQUEST

    def __init__(self, server_address: Any, RequestHandlerClass: Any = CommandHandler) -> None:
        self.started_at = time.monotonic()
        super().__init__(server_address, RequestHandlerClass)


def make_server(address: Any = ("127.0.0.1", 0)) -> CommandServer:
    return CommandServer(address)
