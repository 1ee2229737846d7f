"""``python -m netserv serve``: run a demo echo server on loopback until Ctrl-C.

Useful with ``python -m netserv bench --connect HOST:PORT`` or with
``nc 127.0.0.1 PORT`` in a terminal next to a notebook.
"""

from __future__ import annotations

import argparse

from . import demo


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m netserv serve", description=__doc__)
    parser.add_argument("--model", choices=list(demo.MODELS), default="threading")
    parser.add_argument("--transport", choices=list(demo.TRANSPORTS), default="tcp")
    parser.add_argument("--impl", choices=demo.IMPLS, default="netserv")
    args = parser.parse_args(argv)
    server = demo.make_server(args.model, args.transport, args.impl)
    print(f"{type(server).__name__} ({args.impl}) echoing on {server.server_address}; "
          f"Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        demo.cleanup(server)
    return 0
