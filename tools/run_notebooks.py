"""Execute notebooks top to bottom and save them with their outputs.

    python tools/run_notebooks.py                      # every notebooks/NN_*.ipynb
    python tools/run_notebooks.py notebooks/03_udp_server.ipynb ...

This is the only way the committed outputs are made: one clean run in a fresh
kernel, in the notebook's own folder, with the ``python3`` kernel of the
environment running this script (so nbval's --nbval-current-env sees the same
thing). NETSERV_QUICK is left as it is: committed outputs come from full runs
unless you set it. No timestamps are recorded in the cells' metadata, so that
re-running an unchanged notebook changes only what its outputs changed.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: The folder JupyterLab keeps its autosave copies in: never run, never rewritten.
CHECKPOINTS = ".ipynb_checkpoints"
#: Seconds one cell may run before the run fails (the load notebook is the slowest).
CELL_TIMEOUT = 300


def notebook_paths(args: list[str], folder: pathlib.Path = NOTEBOOKS) -> list[pathlib.Path]:
    """The notebooks named in *args*, or every NN_*.ipynb of *folder*; never a checkpoint copy."""
    if args:
        paths = [pathlib.Path(arg).resolve() for arg in args]
    else:
        paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    return [path for path in paths if CHECKPOINTS not in path.parts]


def run(path: pathlib.Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps of an earlier run
    started = time.perf_counter()
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="paths (default: all)")
    paths = notebook_paths(parser.parse_args(argv).notebooks)
    total = 0.0
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"running {shown} ...", end=" ", flush=True)
        seconds = run(path)
        total += seconds
        print(f"{seconds:.1f} s", flush=True)
    print(f"{len(paths)} notebook(s) in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
