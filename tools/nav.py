"""Write the navigation cells of the course notebooks from the file list.

    python tools/nav.py            # rewrite every notebooks/NN_*.ipynb that is out of sync
    python tools/nav.py --check    # change nothing; exit 1 and name the notebooks out of sync

Theory of operation
-------------------
The course is the sorted list of ``notebooks/NN_*.ipynb``. Each notebook opens
and closes with a navigation cell: a markdown cell tagged ``nav`` whose whole
text is made here, from that list, never by hand::

    [← 01 BaseServer](01_base_server.ipynb) | [Contents](00_index.ipynb) | [03 →](03_udp.ipynb)

A link's title is the neighbour's first heading of the form ``# NN · Title``.
The first notebook has no "previous" part, the last no "next" part, and the
notebook after the index has no "previous" part either: "Contents" is that link.

Rewriting touches only the text of those markdown cells (and, when a notebook
lacks one, inserts a nav cell first or last); outputs and execution counts are
left exactly as they are, so no notebook needs re-executing after ``make nav``.
A notebook is written only when its navigation changed.

The functions that compute the expected state (:func:`expected_nav`,
:func:`problems`) are imported by tests/test_notebooks.py, so the test and the
tool can never disagree.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
INDEX = "00_index.ipynb"
#: The folder JupyterLab keeps its autosave copies in, next to the notebooks.
CHECKPOINTS = ".ipynb_checkpoints"
#: The tag that marks a navigation cell (cell metadata ``{"tags": ["nav"]}``).
NAV_TAG = "nav"
#: ``# 03 · UDP server`` -> ("03", "UDP server"): the title line of a notebook.
TITLE = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$", re.MULTILINE)


def notebook_paths(folder: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The course in order: every ``NN_*.ipynb`` of *folder* (notebooks/), sorted by name.

    JupyterLab's ``.ipynb_checkpoints`` copies are never part of the course.
    """
    return sorted(path for path in (folder or NOTEBOOKS).glob("[0-9][0-9]_*.ipynb")
                  if CHECKPOINTS not in path.parts)


def is_nav(cell: nbformat.NotebookNode) -> bool:
    """True for a markdown cell tagged ``nav``."""
    return cell.cell_type == "markdown" and NAV_TAG in cell.get("metadata", {}).get("tags", [])


def title(notebook: nbformat.NotebookNode, path: pathlib.Path) -> str:
    """``"NN Title"`` from the notebook's first ``# NN · Title`` heading.

    Raises ValueError, naming the file, when there is no such heading.
    """
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and not is_nav(cell):
            match = TITLE.search(cell.source)
            if match:
                return f"{match.group(1)} {match.group(2)}"
    raise ValueError(f"{path.name}: no title heading of the form '# NN · Title'")


def nav_line(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    """The navigation text; *previous*/*following* are (file name, title) or None."""
    parts = []
    if previous is not None:
        parts.append(f"[← {previous[1]}]({previous[0]})")
    parts.append(f"[Contents]({INDEX})")
    if following is not None:
        parts.append(f"[{following[1]} →]({following[0]})")
    return " | ".join(parts)


def expected_nav(paths: list[pathlib.Path]) -> dict[pathlib.Path, str]:
    """The navigation text each notebook of *paths* (in course order) should carry."""
    titles = [(path.name, title(nbformat.read(path, as_version=4), path)) for path in paths]
    expected = {}
    for position, path in enumerate(paths):
        previous = titles[position - 1] if position > 0 else None
        if previous is not None and previous[0] == INDEX:
            previous = None  # the Contents link already leads there
        following = titles[position + 1] if position + 1 < len(paths) else None
        expected[path] = nav_line(previous, following)
    return expected


def problems(notebook: nbformat.NotebookNode, text: str) -> list[str]:
    """What is wrong with *notebook*'s navigation, given its expected *text*."""
    found = []
    for where, cell in (("first", notebook.cells[0] if notebook.cells else None),
                        ("last", notebook.cells[-1] if notebook.cells else None)):
        if cell is None or not is_nav(cell):
            found.append(f"the {where} cell is not a markdown cell tagged {NAV_TAG!r}")
        elif cell.source != text:
            found.append(f"the {where} nav cell reads {cell.source!r}, expected {text!r}")
    return found


def new_nav_cell(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [NAV_TAG]})


def rewrite(notebook: nbformat.NotebookNode, text: str) -> None:
    """Put *text* in the first and last nav cells of *notebook*, adding them if missing."""
    if not notebook.cells or not is_nav(notebook.cells[0]):
        notebook.cells.insert(0, new_nav_cell(text))
    if len(notebook.cells) == 1 or not is_nav(notebook.cells[-1]):
        notebook.cells.append(new_nav_cell(text))
    notebook.cells[0].source = text
    notebook.cells[-1].source = text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if any notebook is out of sync")
    args = parser.parse_args(argv)
    paths = notebook_paths()
    try:
        expected = expected_nav(paths)
    except ValueError as error:
        print(f"nav: {error}", file=sys.stderr)
        return 1
    out_of_sync = []
    for path, text in expected.items():
        notebook = nbformat.read(path, as_version=4)
        wrong = problems(notebook, text)
        if not wrong:
            continue
        out_of_sync.append(path.name)
        if args.check:
            for problem in wrong:
                print(f"{path.relative_to(path.parent.parent)}: {problem}")
        else:
            rewrite(notebook, text)
            nbformat.write(notebook, path)
            print(f"nav: rewrote {path.relative_to(path.parent.parent)}")
    if args.check and out_of_sync:
        print(f"nav: {len(out_of_sync)} notebook(s) out of sync: {', '.join(out_of_sync)};"
              " run `make nav`", file=sys.stderr)
        return 1
    print(f"nav: {len(paths)} notebook(s), {len(out_of_sync)} "
          f"{'out of sync' if args.check else 'rewritten'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
