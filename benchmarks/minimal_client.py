"""The reference client: a closed-loop line-echo load written directly on selectors.

Theory of operation
-------------------
This is the yardstick for netserv's load generator (netserv.measure.load),
as benchmarks/selectors_echo.py is for the event-driven server: the smallest
correct closed-loop client we know how to write. benchmarks/generator_cost.py
runs it and the generator side by side against the same server and compares
their CPU time per request; the difference is what the generator's
bookkeeping costs.

What it still does, because a fair yardstick must do the work that matters:

* N persistent TCP connections (TCP_NODELAY), non-blocking, one
  selectors.DefaultSelector loop in one process;
* each connection sends one 64-byte line, waits for the whole echo, times
  it (time.monotonic) and keeps the latency (one float appended to a list),
  then sends the next;
* a reply that arrives in pieces is put together before it counts.

What it leaves out (what the generator adds): checking that the reply is
the request's own bytes, open loop, timeouts, reconnection, warm-up,
histograms, progress reports, several processes.

Run: ``python benchmarks/minimal_client.py PORT CLIENTS SECONDS`` against a
line-echo server on 127.0.0.1; it prints one JSON line: requests, CPU
seconds of the measured loop, wall seconds. The run is bounded by SECONDS.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time

#: Bytes per request, newline included: the generator's default payload.
PAYLOAD = 64
RECV_SIZE = 65536


def run(port: int, clients: int, seconds: float) -> dict[str, float]:
    """Drive 127.0.0.1:port with ``clients`` closed-loop connections for ``seconds``."""
    message = b"x" * (PAYLOAD - 1) + b"\n"
    selector = selectors.DefaultSelector()
    socks = []
    latencies: list[float] = []
    try:
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
        cpu0, start = time.process_time(), time.monotonic()
        end = start + seconds
        for sock in socks:
            # (the socket, [bytes received of the current reply, when it was sent])
            selector.register(sock, selectors.EVENT_READ, (sock, [0, time.monotonic()]))
            sock.send(message)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            for key, _events in selector.select(end - now):
                sock, state = key.data
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise ConnectionError("the server closed a connection")
                state[0] += len(data)
                if state[0] < PAYLOAD:
                    continue
                now = time.monotonic()
                latencies.append(now - state[1])
                state[0] = 0
                state[1] = now
                sock.send(message)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - start
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    return {"requests": len(latencies), "cpu_s": cpu, "wall_s": wall}



def main() -> None:
    port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run(port, clients, seconds)), flush=True)


if __name__ == "__main__":
    main()
