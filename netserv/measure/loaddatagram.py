"""Datagram clients of one load worker: one datagram per request, replies matched by number.

Theory of operation
-------------------
Over UDP or a Unix datagram socket there is no connection and no order: a
reply may be lost, or overtaken by a later one. So each request carries its
sequence number in its first bytes (netserv.measure.protocol), the client
keeps the requests in flight in a table keyed by that number, and a reply is
matched by the number it starts with, then checked to be the request's own
bytes. A request whose reply has not come within the reply timeout is a
``timeout``; one the kernel would not even queue (a Unix datagram socket's
queue holds only a few, or nobody listens) is ``send_failed`` at once.

A Unix datagram client binds its own socket file, in the worker's temporary
directory, so that the server has an address to reply to.

Like the stream clients, these build on netserv.measure.loadbase and never
import the worker.
"""

from __future__ import annotations

import os
import socket
import time

from .loadbase import IN, RECV_SIZE, RETRY_DELAY, Client, WorkerView
from .protocol import untag

__all__ = ["DatagramClient"]


class DatagramClient(Client):
    """A client over UDP or a Unix datagram socket: replies matched by number."""

    def __init__(self, worker: WorkerView, index: int) -> None:
        super().__init__(worker, index)
        self.sock = socket.socket(worker.family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        if worker.tmpdir:
            self.sock.bind(os.path.join(worker.tmpdir, f"c{index}.sock"))
        self.sock.connect(worker.address)
        self.waiting: dict[int, tuple[float, float, bytes]] = {}  # tag -> (intended, sent, request)
        worker.poller.register(self.sock.fileno(), IN, self)

    def connect(self) -> None:
        """A datagram socket has nothing to set up."""

    def ready(self) -> bool:
        return True

    def fire(self, intended: float | None) -> None:
        now = time.monotonic()
        worker = self.worker
        if intended is None:
            intended = now
        if not worker.admit(intended, now):
            return
        self.sent_any = True
        worker.seq += 1
        request = worker.protocol.request(worker.seq)
        key = untag(request)
        self.waiting[key] = (intended, now, request)
        try:
            self.sock.send(request)
        except OSError:
            # The kernel would not queue it (the server's queue is full: a
            # Unix datagram socket holds only a few) or nobody listens
            # (ECONNREFUSED): the request is lost now, not after a timeout.
            del self.waiting[key]
            worker.count("send_failed")
            if self.closed_loop:
                worker.later(RETRY_DELAY, self.retry)

    def on_event(self, events: int) -> None:
        worker = self.worker
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ECONNREFUSED: an earlier datagram found no server
            now = time.monotonic()
            entry = self.waiting.pop(untag(data), None)
            if entry is None or data != entry[2]:
                worker.count("mismatch")
                continue
            worker.record(entry[0], entry[1], now)
            self.got_reply = True
            if self.closed_loop:
                self.fire(None)

    def pending(self) -> int:
        return len(self.waiting)

    def check_timeouts(self, now: float) -> None:
        late = [key for key, entry in self.waiting.items()
                if now - entry[1] > self.worker.reply_timeout]
        for key in late:
            del self.waiting[key]
        if late:
            self.worker.count("timeout", len(late))
            if self.closed_loop and not self.waiting:
                self.fire(None)

    def finish(self) -> None:
        if self.waiting:
            self.worker.count("unanswered", len(self.waiting))
        self.waiting.clear()
        self.worker.poller.unregister(self.sock.fileno())
        self.sock.close()
