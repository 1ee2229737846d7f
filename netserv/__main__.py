"""``python -m netserv COMMAND ...``: the course's command line.

Each command lives in the module named for its concept and exposes
``main(argv) -> int``; this file only dispatches, importing a module when
its command is used.

    trace MODEL        run one request through a demo server and print the hooks in order
    bench ...          drive a server with the load generator and print latency figures
    plot ...           turn saved benchmark results into figures
    serve ...          run a demo echo server on loopback until Ctrl-C
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "trace": ("netserv.lab.trace_cli", "run one request through a demo server and print its hooks"),
    "bench": ("netserv.measure.bench", "drive a server with the load generator"),
    "plot": ("netserv.measure.plot", "draw figures from saved benchmark results"),
    "serve": ("netserv.measure.serve", "run a demo echo server on loopback until Ctrl-C"),
}


def usage() -> str:
    lines = ["usage: python -m netserv COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<7} {help}" for name, (_module, help) in COMMANDS.items()]
    lines += ["", "python -m netserv COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"netserv: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
