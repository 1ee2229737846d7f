"""Server CPU while accept() fails for lack of file descriptors, per model.

Each server runs in a child process of its own. The child binds a line-echo
server on loopback, serves one request (so its loop runs), then uses up
every free file descriptor (its soft RLIMIT_NOFILE is lowered to just above
the highest one open, and the holes below are filled). This process then
connects a client: the connection waits in the listen backlog, and every
accept() the server tries fails with EMFILE. For WINDOW seconds the child's
CPU time (all its threads, from time.process_time()) is measured; then the
child frees its descriptors and the time until the waiting client gets its
reply is measured too.

The standard module retries at once, for ever (a busy loop); netserv
reports the condition once and retries every ``accept_backoff`` seconds.

    python benchmarks/fd_exhaustion.py            # 2 s per server
    python benchmarks/fd_exhaustion.py --quick    # 0.5 s per server

Figures from a shared machine are noisy; compare them only within one run.
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from netserv.lab import demo  # noqa: E402

#: Seconds with descriptors exhausted, per server (the issue's figure).
WINDOW = 2.0
QUICK_WINDOW = 0.5

#: Models each module has; the stdlib has no pool and no event-driven server.
MODELS = {"netserv": ["sync", "threading", "forking", "pool", "select"],
          "stdlib": ["sync", "threading", "forking"]}

#: Seconds a reply may take before the run is declared broken.
REPLY_TIMEOUT = 10.0


def child(model: str, impl: str) -> None:
    """The server process: commands on stdin, answers on stdout (no new fd needed)."""
    server = demo.make_server(model, "tcp", impl)
    server.handle_accept_exhausted = lambda error: None  # quiet: the figure is CPU
    loop = threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True)
    loop.start()
    print(server.server_address[1], flush=True)
    fillers: list[int] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for command in sys.stdin:
        command = command.strip()
        if command == "exhaust":
            highest = max(int(name) for name in os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as error:
                    assert error.errno == errno.EMFILE
                    break
            print("exhausted", flush=True)
        elif command == "cpu":
            print(time.process_time(), flush=True)
        elif command == "free":
            for fd in fillers:
                os.close(fd)
            fillers.clear()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            print("freed", flush=True)
        elif command == "quit":
            break
    server.shutdown()
    loop.join()
    server.server_close()


def measure(model: str, impl: str, window: float) -> tuple[float, float]:
    """(server CPU % of one core while exhausted, seconds to a reply once freed)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", model, impl],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def ask(command: str) -> str:
        proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return proc.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        port = int(proc.stdout.readline())
        address = (demo.LOOPBACK, port)
        with socket.create_connection(address, timeout=REPLY_TIMEOUT) as first:
            first.sendall(b"warm-up\n")
            first.shutdown(socket.SHUT_WR)
            while first.recv(4096):
                pass
        assert ask("exhaust") == "exhausted"
        with socket.create_connection(address, timeout=REPLY_TIMEOUT) as waiting:
            cpu_before, wall_before = float(ask("cpu")), time.perf_counter()
            time.sleep(window)  # the measurement window
            cpu_after, wall_after = float(ask("cpu")), time.perf_counter()
            assert ask("free") == "freed"
            freed = time.perf_counter()
            waiting.sendall(b"hello\n")
            waiting.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := waiting.recv(4096):
                reply += chunk
            served_after = time.perf_counter() - freed
            assert reply == b"hello\n", reply
        ask("quit")
        proc.wait(REPLY_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return 100 * (cpu_after - cpu_before) / (wall_after - wall_before), served_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short window per server")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    window = QUICK_WINDOW if args.quick else WINDOW
    print(f"server CPU with descriptors exhausted for {window} s, then the time until "
          f"the waiting client is served")
    print(f"{'model':<10} {'impl':<8} {'CPU %':>7} {'served after':>13}")
    for model in MODELS["netserv"]:
        for impl in ("netserv", "stdlib"):
            if model not in MODELS[impl]:
                continue
            cpu, served_after = measure(model, impl, window)
            print(f"{model:<10} {impl:<8} {cpu:>7.1f} {served_after:>11.3f} s", flush=True)


if __name__ == "__main__":
    main()
