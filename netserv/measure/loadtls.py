"""The load generator's TLS clients: a stream client whose bytes go through TLS.

Theory of operation
-------------------
A TLS client is a stream client (netserv.measure.loadclient) with one more
phase between connecting and sending: the handshake. The worker's loop must
never block, so the handshake is driven like everything else, by readiness:

1. the TCP (or Unix) connection is opened non-blocking, as for a plain
   stream; once it is up, the socket is wrapped with the run's client
   SSLContext, ``do_handshake_on_connect=False`` (no byte is read yet);
2. each time the poller reports the socket ready, ``do_handshake()`` takes
   one step; OpenSSL says what it waits for (``SSLWantReadError``: bytes
   from the server; ``SSLWantWriteError``: room to send) and the
   connection is watched for that;
3. once the handshake is done the connection counts as connected: what
   was queued meanwhile (the first request of a new connection) leaves, and
   from then on the plain stream's code sends and matches replies, through
   the SSLSocket. Its would-block exceptions include OpenSSL's want-read
   and want-write (a read that finds only part of a record is "nothing
   yet"), and after each read the bytes OpenSSL has decrypted already
   (``pending()``) are read too: the poller cannot see them.

A handshake that fails (a server whose certificate this CA did not sign, a
server that does not speak TLS, a reset) counts as a ``handshake`` error on
the worker for every request waiting on that connection (at least one), and
the connection is dropped like a refused one: a closed-loop client retries
after RETRY_DELAY. Nothing is raised.

The context is the standard library's client default
(``ssl.create_default_context(cafile=...)``: certificate and host name
checked, TLS 1.2 and later) trusting only the run's CA file; it is made once
per worker process. The name checked is the target's IP address (the course
CA's certificates carry 127.0.0.1 and ::1), ``localhost`` for a Unix socket.

What this does not do: TLS session resumption (every new connection makes a
full handshake: with ``per_connection`` that is what a run measures), client
certificates, a close_notify before closing. A TLS stream is never
half-closed: SSLSocket.shutdown() would drop the TLS layer while the reply
is still to be read, so a per-connection line request is closed after its
reply instead.
"""

from __future__ import annotations

import functools
import socket
import ssl

from .loadbase import IN, OUT, READABLE, WorkerView
from .loadclient import StreamClient, StreamConnection

__all__ = ["TLSStreamClient", "TLSStreamConnection", "client_context"]

#: The name a certificate must carry for a Unix-socket target (no address to check).
UNIX_SERVER_NAME = "localhost"


@functools.cache
def client_context(cafile: str) -> ssl.SSLContext:
    """The client SSLContext trusting ``cafile`` only, made once per process.

    Errors: OSError or ssl.SSLError from loading the file (LoadSpec.validate
    refuses such a file before any worker starts).
    """
    return ssl.create_default_context(cafile=cafile)


class TLSStreamConnection(StreamConnection):
    """One TLS connection: connect, handshake without blocking, then a stream.

    ``connected`` becomes True only when the handshake is done; requests sent
    before are queued, as on a plain connection still connecting.
    """

    __slots__ = ("context", "handshaking", "server_name")

    would_block = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

    def __init__(self, worker: WorkerView, client: StreamClient, context: ssl.SSLContext,
                 server_name: str) -> None:
        self.context = context
        self.server_name = server_name
        self.handshaking = False
        super().__init__(worker, client)
        if self.connected:  # connect() finished at once (a Unix socket): the
            self.connected = False  # handshake starts from the loop, as for TCP,
            self._watch_out(True)  # so that no failure happens in a constructor

    def _start_handshake(self) -> None:
        """The transport is up: wrap the socket (same descriptor) and take the first step."""
        try:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name,
                                                 do_handshake_on_connect=False)
        except OSError:  # the peer left already (getpeername fails)
            self.fail("handshake")
            return
        self.handshaking = True
        self._handshake_step()

    def _handshake_step(self) -> None:
        """One non-blocking step; when done, send what waited for it."""
        sock: ssl.SSLSocket = self.sock  # type: ignore[assignment]
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch_out(False)
            return
        except ssl.SSLWantWriteError:
            self._watch_out(True)
            return
        except OSError:  # SSLError (a certificate refused, not TLS at all), a reset
            self.fail("handshake")
            return
        self.handshaking = False
        self.connected = True
        self._on_writable()  # the queued request(s), if any

    def on_event(self, events: int) -> None:
        """Connecting or handshaking: the next step. Then the plain stream's path."""
        if not self.connected:
            if self.handshaking:
                self._handshake_step()
            elif events & (OUT | READABLE):
                if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self.fail("connection")
                else:
                    self._start_handshake()
            return
        super().on_event(events)
        sock: ssl.SSLSocket = self.sock  # type: ignore[assignment]
        while not self.closed and sock.pending():
            super().on_event(IN)  # records decrypted already: the poller cannot see them

    def _half_close(self) -> None:
        """Never on TLS (see the module's docstring): the client closes after the reply."""
        self.close_after_send = False


class TLSStreamClient(StreamClient):
    """A stream client whose connections speak TLS, trusting the run's CA file."""

    def __init__(self, worker: WorkerView, index: int) -> None:
        super().__init__(worker, index)
        run = worker.run
        assert run.cafile is not None  # LoadSpec.validate: tls needs cafile
        self.context = client_context(run.cafile)
        address = worker.address
        self.server_name = UNIX_SERVER_NAME if isinstance(address, str) else address[0]

    def _open(self) -> StreamConnection:
        conn = TLSStreamConnection(self.worker, self, self.context, self.server_name)
        self.connections.add(conn)
        return conn
