"""Run a command while other processes keep every core busy, then stop them.

    python tools/cpu_hog.py [--hogs N] [--seconds S] -- COMMAND [ARG ...]

Why: the notebooks' load experiments must pass on a busy machine (a shared
CI runner, a laptop compiling something), not only on an idle one. Their
asserts compare two models measured in the same run with wide margins; this
tool checks that claim by running them while N processes (default: one per
core) spin in a loop and compete with the server, the load generator and the
kernel for every core. ``make notebooks-busy`` uses it to run every notebook
in full mode (no NETSERV_QUICK) under nbval.

Resource handling: each hog is a child process that spins for at most
``--seconds`` and then exits on its own, so nothing outlives a crash of this
tool by more than that. Once COMMAND ends (or this tool is interrupted) every
hog is terminated and waited for. The exit status is COMMAND's. The elapsed
time and the hogs' CPU time are printed on stderr at the end.

Error handling: a COMMAND that cannot be started is reported like a shell
would (exit status 127); the hogs are stopped in every case.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

#: Upper bound on one hog's life, whatever happens to this tool: longer than
#: the full notebook run on a slow busy machine, short enough that a forgotten
#: hog does not spin for hours.
DEFAULT_HOG_SECONDS = 3600.0

#: The hog: a pure-Python busy loop that checks a deadline now and then.
HOG_PROGRAM = """
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    for _ in range(100_000):
        pass
"""

#: Exit status when COMMAND cannot be run, as in a POSIX shell.
COMMAND_NOT_FOUND = 127


def start_hogs(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` busy processes, each bounded to ``seconds``."""
    return [subprocess.Popen([sys.executable, "-c", HOG_PROGRAM, str(seconds)])
            for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every hog (those still running) and reap all of them."""
    for hog in hogs:
        if hog.poll() is None:
            hog.terminate()
    for hog in hogs:
        hog.wait()


def children_cpu_seconds() -> float:
    """User + system CPU time of the reaped children (hogs and COMMAND alike)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1,
                        help="busy processes (default: one per core)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_HOG_SECONDS,
                        help="upper bound on each hog's life (default: %(default)s)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if args.hogs < 1 or args.seconds <= 0:
        parser.error("--hogs and --seconds must be positive")

    started = time.perf_counter()
    hogs = start_hogs(args.hogs, args.seconds)
    print(f"cpu_hog: {args.hogs} busy process(es), at most {args.seconds:g} s each",
          file=sys.stderr, flush=True)
    try:
        try:
            status = subprocess.call(command)
        except OSError as err:
            print(f"cpu_hog: cannot run {command[0]!r}: {err}", file=sys.stderr)
            status = COMMAND_NOT_FOUND
    finally:
        stop_hogs(hogs)
    elapsed = time.perf_counter() - started
    print(f"cpu_hog: command exited with status {status} after {elapsed:.0f} s "
          f"under {args.hogs} hog(s); children's CPU time {children_cpu_seconds():.0f} s",
          file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
