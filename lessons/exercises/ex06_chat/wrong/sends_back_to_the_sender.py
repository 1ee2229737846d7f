"""Wrong: broadcasts to every member, the sender included.

A plausible mistake that the checks must reject; the exercise was:
Exercise 06: a chat server (ThreadingMixIn): every line goes to everyone else.

The protocol, over TCP, lines ending in ``\\n``:

1. A client's first line is its name: 1 to 16 letters, digits or ``_``.
   A bad name gets ``* bad name\\n``, a name already in use gets
   ``* name taken\\n``, and the server closes that connection.
2. A good name makes the client a *member*: every other member receives
   ``* <name> joined\\n``, and *then* the new member gets ``* welcome <name>\\n``
   (in this order: a client that has its welcome may count on the others
   having been told, and will never hear of an earlier member's join).
3. Each further line ``<text>`` from a member goes to every *other* member as
   ``<name>: <text>\\n`` (never back to the sender).
4. When a member disconnects, the others receive ``* <name> left\\n``.

A member that vanished (its connection reset, its socket gone) must not
break the others: a failed send to one member is that member's problem only.

``ChatServer`` keeps the members in ``self.members`` (name -> the member's
wfile); handler threads add, remove and read members concurrently, so the
table needs a lock. Do not hold the lock while sending (a slow member would
stall everyone): copy the list of recipients under the lock, send outside it.

Read first: lessons/04_concurrency.md, notebooks/08_threading.ipynb,
netserv/threads.py; exercise 05 (the lock).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import netserv

#: A legal name: short enough to prefix every message, plain enough to print.
NAME = re.compile(rb"[A-Za-z0-9_]{1,16}")


class ChatServer(netserv.ThreadingTCPServer):
    """A threading TCP server with a table of members, shared by the handler threads."""

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        self.members: dict[bytes, Any] = {}
        self.members_lock = threading.Lock()
        super().__init__(server_address, RequestHandlerClass)

    def join(self, name: bytes, wfile: Any) -> bool:
        """Add a member; False if the name is taken."""
        with self.members_lock:
            if name in self.members:
                return False
            self.members[name] = wfile
            return True

    def leave(self, name: bytes) -> None:
        """Remove a member (nothing happens if it is not one)."""
        with self.members_lock:
            self.members.pop(name, None)

    def broadcast(self, line: bytes, sender: bytes) -> None:
        """Send line to every member except sender; a member that fails is skipped."""
        with self.members_lock:
            recipients = list(self.members.values())
        for wfile in recipients:
            try:
                wfile.write(line)
            except OSError:
                pass  # gone (reset, closed): its own thread sees EOF and says it left


class ChatHandler(netserv.StreamRequestHandler):
    """One member's connection: its name, then its lines, until it disconnects."""

    def handle(self) -> None:
        name = self.rfile.readline().rstrip(b"\r\n")
        if not NAME.fullmatch(name):
            self.wfile.write(b"* bad name\n")
            return
        if not self.server.join(name, self.wfile):
            self.wfile.write(b"* name taken\n")
            return
        try:
            # Announce first, welcome second: a client that has its welcome
            # knows the others were told, so nobody hears of an older join late.
            self.server.broadcast(b"* %s joined\n" % name, sender=name)
            self.wfile.write(b"* welcome %s\n" % name)
            for line in self.rfile:
                self.server.broadcast(b"%s: %s\n" % (name, line.rstrip(b"\r\n")), sender=name)
        except OSError:
            pass  # this member's connection broke: it leaves like any other
        finally:
            self.server.leave(name)
            self.server.broadcast(b"* %s left\n" % name, sender=name)


def make_server(address: Any = ("127.0.0.1", 0)) -> ChatServer:
    return ChatServer(address, ChatHandler)
