"""What moving a request to another thread costs, in CPU per request.

Command (from the repository root; a few seconds)::

    .venv/bin/python benchmarks/handoff.py [--items 20000]

Theory of operation
-------------------
A pool hands each accepted request from the loop's thread to a worker; a
thread-per-request server starts a new thread instead. Neither cost depends
on the network, so this script measures them alone, in one process, with no
sockets:

* ``condition``: the pool's hand-off (netserv.pool): a deque guarded by a
  lock, workers waiting on a Condition, the producer notifying one;
* ``simplequeue``: the same with queue.SimpleQueue (implemented in C);
* ``new thread``: threading.Thread(...).start() per item, as ThreadingMixIn.

After each item the producer yields the GIL (``time.sleep(0)``), as the
serve loop does when it goes back to select(). Printed: CPU microseconds of
the whole process per item, and wall-clock microseconds per item. The CPU
figure is the floor that a pool adds to the synchronous server's cost per
request; it explains why the pool's gain over a thread per connection is
bounded (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import collections
import queue
import resource
import threading
import time
from collections.abc import Callable

#: Workers waiting for items, as in the pool's default size.
WORKERS = 8
#: Items handed off per measurement; new threads are started a quarter as often.
DEFAULT_ITEMS = 20000


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(run: Callable[[int], None], items: int) -> tuple[float, float]:
    cpu, wall = _cpu_seconds(), time.perf_counter()
    run(items)
    return ((_cpu_seconds() - cpu) / items * 1e6, (time.perf_counter() - wall) / items * 1e6)


def condition_handoff(items: int) -> None:
    lock = threading.Lock()
    work_ready = threading.Condition(lock)
    pending: collections.deque[int | None] = collections.deque()
    all_done = threading.Event()
    done = [0]

    def worker() -> None:
        while True:
            with work_ready:
                while not pending:
                    work_ready.wait()
                item = pending.popleft()
                if item is None:
                    return
                done[0] += 1
                if done[0] == items:
                    all_done.set()

    workers = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in workers:
        thread.start()
    for item in range(items):
        with work_ready:
            pending.append(item)
            work_ready.notify()
        time.sleep(0)
    all_done.wait()
    with work_ready:
        pending.extend([None] * WORKERS)
        work_ready.notify_all()
    for thread in workers:
        thread.join()


def simplequeue_handoff(items: int) -> None:
    pending: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    lock = threading.Lock()
    all_done = threading.Event()
    done = [0]

    def worker() -> None:
        while pending.get() is not None:
            with lock:
                done[0] += 1
                if done[0] == items:
                    all_done.set()

    workers = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in workers:
        thread.start()
    for item in range(items):
        pending.put(item)
        time.sleep(0)
    all_done.wait()
    for _ in workers:
        pending.put(None)
    for thread in workers:
        thread.join()


def new_thread_per_item(items: int) -> None:
    for _ in range(items):
        thread = threading.Thread(target=int)
        thread.start()
        thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    items = parser.parse_args().items
    print(f"{'hand-off':<14}{'CPU us/item':>12}{'wall us/item':>14}")
    for name, run, count in (("condition", condition_handoff, items),
                             ("simplequeue", simplequeue_handoff, items),
                             ("new thread", new_thread_per_item, items // 4)):
        cpu, wall = _measure(run, count)
        print(f"{name:<14}{cpu:>12.1f}{wall:>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
