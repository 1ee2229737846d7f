"""Wrong: reads with readline() without a limit, so a line without newline is held whole, however long.

A plausible mistake that the checks must reject; the exercise was:
Exercise 04: a key-value protocol with framing and bad-input handling.

The protocol, over TCP. A request is one line of UTF-8 text ending in
``\\n`` (a ``\\r`` before it is ignored); each request gets exactly one reply
line. Command names are case-insensitive; keys are case-sensitive.

=======================  ================================================
request                  reply
=======================  ================================================
``SET <key> <value>``    ``OK`` (value: the rest of the line, spaces kept)
``GET <key>``            ``VALUE <value>``, or ``NOT_FOUND``
``DEL <key>``            ``DELETED``, or ``NOT_FOUND``
``QUIT``                 ``BYE``, then the server closes the connection
=======================  ================================================

Bad input gets an error reply, and the connection stays usable:

* an empty line: ``ERR empty line``
* an unknown command: ``ERR unknown command``
* too few or too many words (``GET``, ``GET a b``, ``SET a``, ``QUIT now``):
  ``ERR usage: <the right form, as in the table>``, e.g. ``ERR usage: GET <key>``
* a key longer than MAX_KEY bytes: ``ERR key too long``
* a line that is not UTF-8: ``ERR not utf-8``

One exception: a line longer than MAX_LINE bytes (newline included) gets
``ERR line too long`` and the server closes the connection, since it can
no longer tell where the next request starts. A server must never hold an
unbounded line in memory, so read at most MAX_LINE + 1 bytes.

The store is shared by all connections (one ThreadingTCPServer): the given
``Store`` class does the locking.

Read first: lessons/03_handlers_and_lifecycle.md, notebooks/05_request_handlers.ipynb
(framing: readline on a byte stream), exercise 02.
"""

from __future__ import annotations

import threading
from typing import Any

import netserv

#: Longest request line, newline included: ample for a key and a short value,
#: small enough that a client cannot make a handler hold much.
MAX_LINE = 1024
#: Longest key in bytes (UTF-8).
MAX_KEY = 64

USAGE = {"SET": "SET <key> <value>", "GET": "GET <key>", "DEL": "DEL <key>", "QUIT": "QUIT"}


class Store:
    """A dict shared by handler threads; every method holds the lock."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._data[key] = value

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None


def execute(store: Store, line: str) -> str:
    """The reply (without newline) to one request line (already decoded, ending removed)."""
    if not line:
        return "ERR empty line"
    command, _, rest = line.partition(" ")
    command = command.upper()
    if command not in USAGE:
        return "ERR unknown command"
    if command == "SET":
        key, _, value = rest.partition(" ")
        args_ok = bool(key) and bool(value)
    else:
        key, value = rest, ""
        args_ok = (bool(key) and " " not in key) if command != "QUIT" else not rest
    if not args_ok:
        return f"ERR usage: {USAGE[command]}"
    if len(key.encode()) > MAX_KEY:
        return "ERR key too long"
    if command == "SET":
        store.set(key, value)
        return "OK"
    if command == "GET":
        found = store.get(key)
        return "NOT_FOUND" if found is None else f"VALUE {found}"
    if command == "DEL":
        return "DELETED" if store.delete(key) else "NOT_FOUND"
    return "BYE"


class KVHandler(netserv.StreamRequestHandler):
    """One connection: read bounded lines, decode, execute, reply; stop after QUIT."""

    def handle(self) -> None:
        while True:
            raw = self.rfile.readline()
            if not raw:
                return  # the client closed
            if len(raw) > MAX_LINE:
                self.wfile.write(b"ERR line too long\n")
                return  # the rest of that line would read as requests: close
            if not raw.endswith(b"\n"):
                return  # a partial request cut by the client's close: not a request
            try:
                line = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8")
            except UnicodeDecodeError:
                self.wfile.write(b"ERR not utf-8\n")
                continue
            reply = execute(self.server.store, line)
            self.wfile.write(reply.encode("utf-8") + b"\n")
            if reply == "BYE":
                return


class KVServer(netserv.ThreadingTCPServer):
    def __init__(self, server_address: Any, RequestHandlerClass: Any = KVHandler) -> None:
        self.store = Store()
        super().__init__(server_address, RequestHandlerClass)


def make_server(address: Any = ("127.0.0.1", 0)) -> KVServer:
    return KVServer(address)
