"""The simulated stream clients of one load worker: connections, requests, replies.

Theory of operation
-------------------
A worker process (netserv.measure.loadworker) runs many clients on one
loop. Each client here is a small state machine driven by that loop:

* :class:`StreamClient` (streams: tcp, unix) owns one persistent
  connection, or (``per_connection``) a new connection per request.
  ``fire(intended)`` sends one request: due at ``intended`` (open loop) or
  now (closed loop, ``intended`` None). A :class:`StreamConnection` queues
  what the socket does not take, keeps the requests in flight in order
  (``pending``), and cuts replies out of the received bytes with the run's
  protocol (netserv.measure.protocol). A closed-loop client fires its next
  request from the reply that completes the previous one.
* datagram clients (udp, unix-dgram) are netserv.measure.loaddatagram's.

Both kinds build on netserv.measure.loadbase (the client base, the poller,
what a client sees of its worker) and never import the worker itself.

The hot path (a reply arrives, the next request leaves) is kept short, as the
generator competes for the CPU with the server it measures: one recv(), a
clock read for the reply and one for the next send, a comparison of the
reply with the request's own bytes (no new object), one send() straight to
the socket when nothing is queued; a closed loop's next request leaves from
the reply's own handler (``on_event``), not through ``StreamClient.fire``.
Sockets are registered with the worker's poller (epoll or poll(), called
directly with a table from file descriptor to client, not through selectors).

Failures are counted on the worker (``worker.count``), never raised: a
refused or reset connection is a ``connection`` error for every request
in flight on it; a closed-loop client retries after RETRY_DELAY.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections import deque

from .loadbase import IN, OUT, READABLE, RECV_SIZE, RETRY_DELAY, Client, WorkerView
from .protocol import UNUSABLE

__all__ = ["StreamClient", "StreamConnection"]

_monotonic = time.monotonic  # one lookup fewer per request


class StreamConnection:
    """One stream socket and the requests in flight on it, answered in order.

    ``would_block``: the exceptions of a send() or recv() that mean "not
    now, try when the poller says so" (a subclass over TLS adds OpenSSL's
    want-read and want-write); any other OSError fails the connection.
    """

    #: Looked up only when an exception is raised: no cost on the hot path.
    would_block: tuple[type[OSError], ...] = (BlockingIOError,)

    __slots__ = ("client", "close_after_send", "closed", "connected", "fd", "inbuf",
                 "last_reply", "out", "pending", "retired", "sock", "watching_out", "worker")

    def __init__(self, worker: WorkerView, client: StreamClient) -> None:
        self.worker = worker
        self.client = client
        self.sock = socket.socket(worker.family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        if worker.family != getattr(socket, "AF_UNIX", None):
            # Our own small writes go out at once: the generator must not add
            # Nagle delays of its own to what it measures.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        self.out = bytearray()
        self.inbuf = b""
        self.pending: deque[tuple[float, float, bytes]] = deque()  # (intended, sent, request)
        self.closed = False
        self.last_reply = 0.0  # when the previous reply on this connection arrived
        self.retired = False  # the server said it closes this connection: send no more
        self.close_after_send = False  # per-connection line requests: half-close when sent
        err = self.sock.connect_ex(worker.address)
        if err not in (0, errno.EISCONN, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self.sock.close()
            self.closed = True
            raise ConnectionRefusedError(err, os.strerror(err))
        self.connected = err in (0, errno.EISCONN)
        self.watching_out = not self.connected
        worker.poller.register(self.fd, IN | OUT if self.watching_out else IN, self)

    def send(self, intended: float, request: bytes, now: float) -> None:
        """Put one request in flight: straight to the socket when nothing is queued."""
        self.pending.append((intended, now, request))
        if self.out or not self.connected:
            self.out += request
            self._watch_out(True)
            return
        try:
            sent = self.sock.send(request)
        except self.would_block:
            sent = 0
        except OSError:
            self.fail("connection")
            return
        if sent < len(request):
            self.out += request[sent:]
            self._watch_out(True)
        elif self.close_after_send:
            self._half_close()

    def _watch_out(self, on: bool) -> None:
        if on != self.watching_out:
            self.worker.poller.modify(self.fd, IN | OUT if on else IN)
            self.watching_out = on

    def _half_close(self) -> None:
        self.close_after_send = False
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed first: its reply, if any, is still readable

    def _on_writable(self) -> None:
        if not self.connected:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail("connection")
                return
            self.connected = True
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except self.would_block:
                sent = 0
            except OSError:
                self.fail("connection")
                return
            del self.out[:sent]
        if not self.out:
            self._watch_out(False)
            if self.close_after_send:
                self._half_close()

    def on_event(self, events: int) -> None:
        """Ready: finish connecting or sending, then read and match replies.

        The reading part is the hot path, kept in this one method.
        """
        if events & OUT:
            self._on_writable()
        if not events & READABLE or self.closed:
            return
        try:
            data = self.sock.recv(RECV_SIZE)
        except self.would_block:
            return
        except OSError:
            self.fail("connection")
            return
        now = _monotonic()
        if not data:
            self.fail("connection" if self.pending else None)
            return
        if self.inbuf:
            data = self.inbuf + data
        worker, pending, protocol = self.worker, self.pending, self.worker.protocol
        size, start = len(data), 0
        while pending and start < size:
            intended, sent, request = pending[0]
            end, error = protocol.parse(data, start, request)
            if end < 0:
                if end == UNUSABLE:
                    pending.popleft()
                    worker.count("protocol")
                    self.fail("connection")
                    return
                break
            pending.popleft()
            start = end
            if error is None:
                # A client that waited for each reply could have sent this
                # request only once the previous reply was in: the
                # uncorrected (coordinated-omission) clock starts there.
                # (A comparison, not max(): no function call on the hot path.)
                last = self.last_reply
                worker.record(intended, sent if sent > last else last, now)
            else:
                worker.count(error)
            self.last_reply = now
            if protocol.closes:
                self.retired = True  # the next request opens another connection
                if self.client.persistent is self:
                    self.client.persistent = None
            client = self.client
            if client.closed_loop and client.persistent is self:
                # The hot path, StreamClient.fire without its other cases: the
                # next request of a closed loop leaves on this connection.
                client.got_reply = True
                sent = _monotonic()
                if worker.admit(sent, sent):
                    worker.seq += 1
                    self.send(sent, protocol.request(worker.seq), sent)
            else:
                client.on_reply(self)
            if self.closed:
                return
        self.inbuf = data[start:] if start < size else b""
        if self.retired and not pending:
            self.close()  # what the server would do anyway: no descriptor piles up
            self.client.connections.discard(self)

    def check_timeout(self, now: float) -> None:
        # From the actual send: a generator that fell behind its schedule
        # must not blame the server for its own lateness.
        if self.pending and now - self.pending[0][1] > self.worker.reply_timeout:
            self.fail("timeout")

    def fail(self, kind: str | None) -> None:
        """Drop the connection; its requests in flight count as ``kind``."""
        if self.closed:
            return
        if kind:
            self.worker.count(kind, max(len(self.pending), 1))
        self.pending.clear()
        self.close()
        self.client.on_closed(self, failed=kind is not None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.worker.poller.unregister(self.fd)
            self.sock.close()


class StreamClient(Client):
    """One simulated stream client: its connection(s), its next request."""

    def __init__(self, worker: WorkerView, index: int) -> None:
        super().__init__(worker, index)
        self.per_connection = worker.run.per_connection
        self.connections: set[StreamConnection] = set()
        self.persistent: StreamConnection | None = None

    def connect(self) -> None:
        """Before the start: open the persistent connection (none for per-connection)."""
        if not self.per_connection:
            try:
                self.persistent = self._open()
            except OSError:
                self.worker.count("connection")

    def ready(self) -> bool:
        conn = self.persistent
        return conn is None or conn.connected or conn.closed

    def _open(self) -> StreamConnection:
        conn = StreamConnection(self.worker, self)
        self.connections.add(conn)
        return conn

    def fire(self, intended: float | None) -> None:
        """Send one request due at ``intended`` (None: now, closed loop)."""
        now = _monotonic()
        worker = self.worker
        if intended is None:
            intended = now
        if not worker.admit(intended, now):
            return
        self.sent_any = True
        conn = self.persistent
        try:
            if self.per_connection:
                conn = self._open()
                conn.close_after_send = worker.protocol.name == "line"
            elif conn is None:
                conn = self.persistent = self._open()
        except OSError:
            # Refused (a full Unix backlog, no server listening): counted; a
            # closed-loop client retries shortly, an open-loop one at its
            # next scheduled request.
            worker.count("connection")
            if self.closed_loop:
                worker.later(RETRY_DELAY, self.retry)
            return
        worker.seq += 1
        conn.send(intended, worker.protocol.request(worker.seq), now)

    def on_reply(self, conn: StreamConnection) -> None:
        self.got_reply = True
        if self.per_connection:
            conn.close()
            self.connections.discard(conn)
        if self.closed_loop:
            self.fire(None)

    def on_closed(self, conn: StreamConnection, failed: bool) -> None:
        self.connections.discard(conn)
        persistent = conn is self.persistent
        if persistent:
            self.persistent = None
        if self.closed_loop and (failed or persistent):
            # A failure, or a server that closed the persistent connection
            # between requests: the next request opens a new one.
            self.worker.later(RETRY_DELAY if failed else 0.0, self.retry)

    def pending(self) -> int:
        return sum(len(c.pending) for c in self.connections)

    def check_timeouts(self, now: float) -> None:
        for conn in list(self.connections):
            conn.check_timeout(now)

    def finish(self) -> None:
        """End of the run: what is still unanswered is counted, sockets closed."""
        for conn in list(self.connections):
            if conn.pending:
                self.worker.count("unanswered", len(conn.pending))
            conn.close()
        self.connections.clear()
