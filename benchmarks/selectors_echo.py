"""The reference loop: a line-echo server written directly on selectors.

Theory of operation
-------------------
This is the yardstick for netserv.eventdriven: the smallest correct
event-driven line-echo server we know how to write, with no framework, no
hooks, no table beyond what correctness needs. benchmarks/concurrency.py
compares the server CPU time per request of EventDrivenTCPServer with this
loop's; the difference is what the framework costs.

What it still does, because a fair yardstick must be correct:

* every socket is non-blocking; one recv() per readable event;
* line echo: the bytes up to the last newline go back, the bytes after it
  wait for the rest of their line (``held``);
* a reply the kernel does not take whole is kept (``unsent``) and sent when
  the socket is writable; reading pauses meanwhile, so memory stays bounded.

What it leaves out (what netserv adds): verify_request, error routing, idle
timeouts, line length limits, a state table, shutdown().

Run it alone: ``python benchmarks/selectors_echo.py`` prints its address on
127.0.0.1 and serves until Ctrl-C.
"""

from __future__ import annotations

import selectors
import socket

#: The same recv() size as netserv.eventdriven, so both do the same work.
RECV_SIZE = 65536

#: listen() backlog: the benchmark opens its connections in a burst.
BACKLOG = 128


def serve(listener: socket.socket) -> None:
    """Echo lines on every connection accepted from ``listener``, for ever."""
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    held: dict[socket.socket, bytes] = {}  # a line's beginning, waiting for its end
    unsent: dict[socket.socket, bytes] = {}  # replies the kernel did not take yet
    while True:
        for key, events in selector.select():
            sock = key.fileobj
            if sock is listener:
                try:
                    conn, _address = listener.accept()
                except BlockingIOError:
                    continue  # the client left before accept()
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ)
                continue
            if events & selectors.EVENT_WRITE:
                data = unsent.pop(sock)
                sent = sock.send(data)
                if sent < len(data):
                    unsent[sock] = data[sent:]
                else:
                    selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(RECV_SIZE)
            except ConnectionError:
                data = b""
            if not data:
                selector.unregister(sock)
                held.pop(sock, None)
                unsent.pop(sock, None)
                sock.close()
                continue
            if sock in held:
                data = held.pop(sock) + data
            end = data.rfind(b"\n") + 1
            if end < len(data):
                held[sock] = data[end:]
                data = data[:end]
            if data:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except ConnectionError:
                    continue  # reset: the next recv() reports it and closes
                if sent < len(data):
                    unsent[sock] = data[sent:]
                    selector.modify(sock, selectors.EVENT_WRITE)


def main() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(BACKLOG)
    print(f"echoing lines on {listener.getsockname()}; Ctrl-C stops", flush=True)
    try:
        serve(listener)
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main()
