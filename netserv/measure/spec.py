"""What a load run is asked to do: the spec, its bounds, and each worker's share.

Theory of operation
-------------------
A run is described once, by :class:`LoadSpec`, a dataclass the caller fills
in (``python -m netserv bench`` builds it from its options). ``validate()``
refuses, with a ValueError of one line, every setting that cannot run or
would only measure a typo: a rate of zero, infinity or 10**12 requests per
second, a payload of a terabyte, a target that is not on this machine's
loopback. It is called before any process starts or any socket connects.

The load generator splits the clients over worker processes; each worker
receives a :class:`WorkerSpec`: the run's LoadSpec plus its own share (which
clients, how many requests at most). A WorkerSpec travels to its process as
one line of JSON (``to_json``/``from_json``), so the worker is typed through
the same fields as the caller, never through a loose dictionary.

Targets: a (host, port) pair for tcp and udp, where host is an IPv4 or IPv6
loopback address (``localhost`` means 127.0.0.1), or a socket path for the
Unix transports. With ``tls`` the streams speak TLS and trust the CA
certificate(s) in ``cafile`` (PEM) only: validate() loads that file once,
so a missing, unreadable or certificate-less file is refused up front.
:func:`address_family` says which socket family connects to
it, so that ``::1`` is reached over IPv6.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import socket
import ssl

__all__ = [
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_REPLY_TIMEOUT",
    "MAX_CLIENTS",
    "MAX_PAYLOAD",
    "MAX_RATE",
    "PROTOCOLS",
    "TRANSPORTS",
    "Address",
    "LoadSpec",
    "WorkerSpec",
    "address_family",
    "check_loopback",
]

#: A target: (loopback host, port) for tcp/udp, a socket path for unix.
Address = str | tuple[str, int]

#: Transports the generator speaks (the names of netserv.lab.demo).
TRANSPORTS = ("tcp", "udp", "unix", "unix-dgram")
DATAGRAM_TRANSPORTS = ("udp", "unix-dgram")
#: What a request is: an echoed line, or an HTTP/1.1 GET (streams only).
PROTOCOLS = ("line", "http")
#: Seconds to wait for a reply before counting a timeout: long enough to see
#: a 1-second stall as latency rather than as an error, short enough that a
#: dead server ends the run promptly.
DEFAULT_REPLY_TIMEOUT = 5.0
#: Hard cap on requests in one run, whatever the rate: bounds memory (one
#: float per measured request) and time even for a mistaken rate.
DEFAULT_MAX_REQUESTS = 5_000_000
#: Longest run accepted (seconds of warm-up plus measurement).
MAX_RUN_SECONDS = 3600.0
#: Highest open-loop rate accepted (requests/s, all clients together). One
#: Python generator process sends ~50-100k requests/s on loopback and the
#: fastest demo server answers fewer; a rate above this is sent late, not at
#: the rate asked, so it is refused as a mistake (10**12, inf).
MAX_RATE = 200_000.0
#: Bytes of a request that carry its sequence number (decimal, zero-padded).
SEQ_DIGITS = 12
#: The smallest line payload: the sequence number, one filler byte, the newline.
MIN_PAYLOAD = SEQ_DIGITS + 2
#: Largest line payload: every request is built in memory, and past 1 MiB a
#: run measures copying, not the server's concurrency model.
MAX_PAYLOAD = 1 << 20
#: Largest datagram payload: the demo datagram servers read 8192 bytes at most.
MAX_DATAGRAM_PAYLOAD = 8192
#: Most clients in one run: each holds a descriptor (or more) in a worker,
#: and the usual per-process limit is 1024 descriptors.
MAX_CLIENTS = 10_000
#: Most worker processes: more than the machine's cores only adds noise.
MAX_PROCESSES = 64


@dataclasses.dataclass
class LoadSpec:
    """What to run. ``address`` is (host, port) for tcp/udp or a path for unix.

    ``protocol`` "line": each request is a line of ``payload`` bytes that the
    server echoes. "http": each request is ``GET path HTTP/1.1`` on a
    keep-alive connection, answered by a response with Content-Length.

    ``tls``: either protocol over TLS (stream transports), the server's
    certificate checked against ``cafile`` (a PEM file of CA certificates)
    and the target's address (netserv.measure.loadtls).
    """

    address: Address
    transport: str = "tcp"
    clients: int = 8
    duration: float = 5.0
    warmup: float = 1.0
    rate: float | None = None  # total requests per second (open loop); None: closed loop
    per_connection: bool = False
    payload: int = 64  # bytes per request, newline included (line protocol)
    processes: int | None = None  # worker processes; None: one per core, at most one per client
    max_requests: int = DEFAULT_MAX_REQUESTS
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    quiet: bool = False  # no progress lines on stderr
    protocol: str = "line"
    path: str = "/"  # http: the path every GET asks for
    tls: bool = False  # streams over TLS
    cafile: str | None = None  # tls: the CA certificate(s) to trust, PEM

    def __post_init__(self) -> None:
        if isinstance(self.address, list):  # from JSON
            host, port = self.address
            self.address = (str(host), int(port))

    def validate(self) -> None:
        """Raise ValueError (one line) naming the first setting that cannot be run."""
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}; "
                             f"choose from {', '.join(TRANSPORTS)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; "
                             f"choose from {', '.join(PROTOCOLS)}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}, got {self.clients}")
        if not (self.duration > 0 and self.warmup >= 0
                and self.duration + self.warmup <= MAX_RUN_SECONDS):
            raise ValueError(f"duration must be > 0, warmup >= 0, and together at most "
                             f"{MAX_RUN_SECONDS:.0f} s")
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"rate must be > 0 and at most {MAX_RATE:.0f} requests/s "
                             f"(a Python generator cannot send faster), got {self.rate}")
        datagram = self.transport in DATAGRAM_TRANSPORTS
        if self.protocol == "http":
            if datagram:
                raise ValueError("protocol http runs over a stream transport (tcp, unix)")
            if not self.path.startswith("/") or any(c in self.path for c in " \r\n"):
                raise ValueError(f"http path must start with / and hold no spaces, "
                                 f"got {self.path!r}")
        elif not MIN_PAYLOAD <= self.payload <= MAX_PAYLOAD:
            raise ValueError(f"payload must be between {MIN_PAYLOAD} bytes (it carries a "
                             f"sequence number) and {MAX_PAYLOAD} bytes, got {self.payload}")
        if datagram and self.payload > MAX_DATAGRAM_PAYLOAD:
            raise ValueError(f"datagram payload must be <= {MAX_DATAGRAM_PAYLOAD} bytes")
        if datagram and self.per_connection:
            raise ValueError("per_connection applies to stream transports (tcp, unix) only")
        if self.tls or self.cafile is not None:
            self._check_tls(datagram)
        if self.processes is not None and not 1 <= self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be between 1 and {MAX_PROCESSES}")
        if self.max_requests < 1 or not 0 < self.reply_timeout <= MAX_RUN_SECONDS:
            raise ValueError("max_requests must be >= 1 and reply_timeout > 0")
        self.address = check_loopback(self.address, self.transport)

    def _check_tls(self, datagram: bool) -> None:
        if not self.tls:
            raise ValueError("cafile is given without tls: it is the CA a TLS client trusts")
        if datagram:
            raise ValueError("tls runs over a stream transport (tcp, unix)")
        if not self.cafile:
            raise ValueError("tls needs cafile: the CA certificate (PEM) the client trusts")
        try:
            ssl.create_default_context(cafile=self.cafile)
        except OSError as exc:  # ssl.SSLError included: not a PEM certificate
            raise ValueError(f"cafile {self.cafile}: cannot load a CA certificate from it "
                             f"({exc.strerror or exc})") from None
        self.cafile = os.path.abspath(self.cafile)  # the workers may not share our cwd

    def worker_count(self) -> int:
        if self.processes is not None:
            return max(1, min(self.processes, self.clients))
        return max(1, min(self.clients, os.cpu_count() or 1))

    def worker_specs(self) -> list[WorkerSpec]:
        """Split the clients (and the request cap) over the worker processes."""
        count = self.worker_count()
        cap = math.ceil(self.max_requests / count)
        specs, first = [], 0
        for index in range(count):
            share = self.clients // count + (index < self.clients % count)
            specs.append(WorkerSpec(self, index, first, share, cap))
            first += share
        return specs


@dataclasses.dataclass
class WorkerSpec:
    """One worker process's part of a run: clients first .. first + clients - 1."""

    run: LoadSpec
    worker: int
    first_client: int
    clients: int
    max_requests: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        data = json.loads(text)
        data["run"] = LoadSpec(**data["run"])
        return cls(**data)


def check_loopback(address: Address, transport: str) -> Address:
    """Refuse any target that is not on this machine's loopback (ValueError).

    Returns the address to connect to: ``localhost`` becomes 127.0.0.1 (the
    name could resolve to either family), IPv6 brackets are removed.
    """
    if transport.startswith("unix"):
        if not isinstance(address, str):
            raise ValueError(f"a {transport} target is a socket path, got {address!r}")
        return address
    try:
        host, port = address  # type: ignore[str-unpack]  # a str is refused below
        host = "127.0.0.1" if host == "localhost" else str(host).strip("[]")
        ip = ipaddress.ip_address(host)
    except (TypeError, ValueError):
        raise ValueError(f"target must be (loopback IP, port), got {address!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"the load generator only sends to loopback addresses "
                         f"(127.0.0.0/8, ::1); refusing {host!r}")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"bad port {port!r}")
    return (host, port)


def address_family(address: Address, transport: str) -> socket.AddressFamily:
    """The socket family that reaches ``address``: AF_UNIX, AF_INET6 or AF_INET."""
    if transport.startswith("unix"):
        return socket.AF_UNIX
    return socket.AF_INET6 if ":" in address[0] else socket.AF_INET
