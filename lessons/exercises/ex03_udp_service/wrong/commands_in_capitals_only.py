"""Wrong: compares command names without upper-casing them, though they are case-insensitive.

A plausible mistake that the checks must reject; the exercise was:
Exercise 03: a tiny command service over UDP (DatagramRequestHandler).

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
        if netserv.is_truncated(self.packet):
            self.wfile.write(b"ERR too long")
            return
        request = self.packet.rstrip(b"\r\n")
        if not request:
            self.wfile.write(b"ERR empty")
            return
        command, _, argument = request.partition(b" ")
        if command == b"ECHO":
            self.wfile.write(b"OK " + argument)
        elif command == b"TIME" and not argument:
            self.wfile.write(b"OK %d" % int(time.time()))
        elif command == b"UPTIME" and not argument:
            uptime = time.monotonic() - self.server.started_at
            self.wfile.write(b"OK %d" % int(uptime))
        else:
            self.wfile.write(b"ERR unknown command")


class CommandServer(netserv.UDPServer):
    """A UDP server that remembers when it started (time.monotonic())."""

    max_packet_size = MAX_REQUEST

    def __init__(self, server_address: Any, RequestHandlerClass: Any = CommandHandler) -> None:
        self.started_at = time.monotonic()
        super().__init__(server_address, RequestHandlerClass)


def make_server(address: Any = ("127.0.0.1", 0)) -> CommandServer:
    return CommandServer(address)
