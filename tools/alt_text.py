"""Alt text for the course's figures, kept in the cell that draws each one.

    python tools/alt_text.py --list [NOTEBOOK ...]     # every figure cell: its alt text, or MISSING
    python tools/alt_text.py --set NOTEBOOK CELL TEXT  # one cell; CELL is its id or its index
    python tools/alt_text.py --from FILE.json          # many: {"NOTEBOOK": {"CELL": "TEXT", ...}}

Theory of operation
-------------------
A figure of the course is an ``image/png`` output of a code cell. Its alt text
is stored in that cell's metadata, under the key MyST-NB reads for the images
a cell outputs (its per-cell ``image`` option)::

    {"mystnb": {"image": {"alt": "What the figure shows and what to read from it."}}}

The site's builder puts it on the ``<img>`` it writes. JupyterLab's image
renderer takes no alt text from anything, so in JupyterLab the text is read
in the cell's metadata inspector: the cell is the one place both tools share.
The option belongs to the cell, not to one output: a cell that draws several
figures gives all of them the same text, which must describe them all.

Writing changes that key and nothing else: nbformat reads the notebook and
writes it back, outputs and execution counts untouched, so no notebook needs
re-executing. A notebook is written only when one of its alt texts changed.
A text is written only if it passes :func:`problems`, the rules that
tests/test_alt_text.py imports, so the tool and the test cannot disagree:

* one or more real sentences: at least :data:`MIN_WORDS` words, ending with a
  full stop;
* not a placeholder ("Figure 3.", "A plot.", matplotlib's ``<Figure size ...>``).

Markdown images (lesson pages, docs, benchmarks/README.md) carry their alt text
in ``![alt](path)``; :func:`markdown_images` finds them for the same test, and
``--list`` prints them too. This tool does not edit Markdown.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections.abc import Iterator

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: The Markdown of the course that may hold images: lesson pages and exercises, docs, results.
MARKDOWN = [ROOT / "lessons", ROOT / "docs", ROOT / "benchmarks" / "README.md"]
#: The folder JupyterLab keeps its autosave copies in, next to the notebooks.
CHECKPOINTS = ".ipynb_checkpoints"
#: The output type that is a figure (what matplotlib's inline backend writes).
FIGURE = "image/png"
#: Where MyST-NB reads a cell's image options: cell.metadata["mystnb"]["image"]["alt"].
METADATA_KEY, IMAGE_KEY, ALT_KEY = "mystnb", "image", "alt"

#: A sentence that says what a figure shows and what to read from it needs room:
#: "Latency grows with load." (4 words) names no axis and no finding.
MIN_WORDS = 8
#: A Markdown image's alt text may be shorter (the text around it describes the
#: figure), but never a bare file name or a single word.
MIN_MARKDOWN_WORDS = 5
#: Texts that name a figure instead of describing it, matched anywhere in the text.
PLACEHOLDERS = re.compile(
    r"<Figure size"                                   # matplotlib's repr, copied
    r"|\b(?:fig(?:ure)?\.?|image|plot|chart|graph)\s*\d+\b"  # "Figure 3", "plot 2"
    r"|\b(?:TODO|FIXME|TBD|lorem ipsum|alt text)\b",
    re.IGNORECASE)
#: Texts that are nothing but a generic noun, however padded: "A plot.", "The figure below."
GENERIC = re.compile(
    r"^\W*(?:(?:a|an|the|this|that|one|our|above|below|following|output|result|resulting)\s+)*"
    r"(?:figure|fig|image|picture|plot|chart|graph|diagram|output|screenshot)s?"
    r"(?:\s+(?:above|below|here|shown))?\W*$",
    re.IGNORECASE)
#: A Markdown image: ![alt](target "optional title").
MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def notebook_paths(folder: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The course's notebooks, ``NN_*.ipynb`` of *folder* (notebooks/), sorted by name."""
    return sorted(path for path in (folder or NOTEBOOKS).glob("[0-9][0-9]_*.ipynb")
                  if CHECKPOINTS not in path.parts)


def figure_count(cell: nbformat.NotebookNode) -> int:
    """How many figures (``image/png`` outputs) a cell has; 0 for a cell that is not code."""
    if cell.cell_type != "code":
        return 0
    return sum(1 for output in cell.get("outputs", []) if FIGURE in output.get("data", {}))


def figure_cells(notebook: nbformat.NotebookNode) -> Iterator[tuple[int, nbformat.NotebookNode]]:
    """``(index, cell)`` for every code cell of *notebook* that has at least one figure."""
    for index, cell in enumerate(notebook.cells):
        if figure_count(cell):
            yield index, cell


def alt_text(cell: nbformat.NotebookNode) -> str | None:
    """The cell's alt text, or None when it has none (or the key holds no string)."""
    text = cell.get("metadata", {}).get(METADATA_KEY, {}).get(IMAGE_KEY, {}).get(ALT_KEY)
    return text if isinstance(text, str) else None


def words(text: str) -> list[str]:
    """The words of *text*: runs of letters or digits (``shutdown()`` is one word)."""
    return re.findall(r"[^\W_]+(?:['\u2019_.-][^\W_]+)*", text)


def problems(text: str | None, *, min_words: int = MIN_WORDS,
             sentence: bool = True) -> list[str]:
    """What is wrong with *text* as a figure's alt text; ``[]`` when nothing is.

    *sentence* asks for a closing full stop (a notebook figure's text must be
    a sentence; a Markdown image's alt is often a phrase). Says nothing about
    whether the text is true of the figure: that takes a person looking at it.
    """
    if text is None or not text.strip():
        return ["MISSING"]
    found = []
    count = len(words(text))
    if count < min_words:
        found.append(f"{count} words, fewer than {min_words}")
    if sentence and not text.rstrip().endswith("."):
        found.append("does not end with a full stop")
    if PLACEHOLDERS.search(text) or GENERIC.match(text):
        found.append("a placeholder, not a description")
    return found


def markdown_images(paths: list[pathlib.Path] | None = None,
                    ) -> Iterator[tuple[pathlib.Path, int, str, str]]:
    """``(file, line number, alt, target)`` for every ``![alt](target)`` in *paths*.

    *paths* are folders (searched for ``*.md``) or files; the default is the
    course's Markdown, :data:`MARKDOWN`. A path that does not exist is skipped.
    """
    files: list[pathlib.Path] = []
    for path in paths if paths is not None else MARKDOWN:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.md")))
        elif path.exists():
            files.append(path)
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in MARKDOWN_IMAGE.finditer(line):
                yield path, number, match.group(1), match.group(2)


def find_cell(notebook: nbformat.NotebookNode, key: str) -> tuple[int, nbformat.NotebookNode]:
    """The cell named by *key*: its id, or else its index. Raises KeyError naming the key."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("id") == key:
            return index, cell
    if key.isdigit() and int(key) < len(notebook.cells):
        return int(key), notebook.cells[int(key)]
    raise KeyError(f"no cell with id or index {key!r}")


def set_alt(cell: nbformat.NotebookNode, text: str) -> bool:
    """Store *text* as the cell's alt text, keeping its other metadata; True if it changed."""
    if alt_text(cell) == text:
        return False
    metadata = cell.setdefault("metadata", nbformat.NotebookNode())
    mystnb = metadata.setdefault(METADATA_KEY, nbformat.NotebookNode())
    mystnb.setdefault(IMAGE_KEY, nbformat.NotebookNode())[ALT_KEY] = text
    return True


def resolve(name: str) -> pathlib.Path:
    """A notebook given as a path, or as a file name inside notebooks/."""
    path = pathlib.Path(name)
    if not path.exists() and (NOTEBOOKS / path.name).exists():
        path = NOTEBOOKS / path.name
    return path.resolve()


def apply(texts: dict[str, dict[str, str]]) -> list[str]:
    """Write *texts* ({notebook: {cell id or index: alt}}) into the notebooks.

    Every text is checked before anything is written: a text that breaks a rule,
    a cell that does not exist or draws no figure, is reported and nothing is
    written. Returns the error messages (``[]`` on success).
    """
    errors: list[str] = []
    changed: dict[pathlib.Path, nbformat.NotebookNode] = {}
    for name, cells in texts.items():
        path = resolve(name)
        if not path.exists():
            errors.append(f"{name}: no such notebook")
            continue
        notebook = nbformat.read(path, as_version=4)
        for key, text in cells.items():
            try:
                index, cell = find_cell(notebook, str(key))
            except KeyError as error:
                errors.append(f"{path.name}: {error.args[0]}")
                continue
            if not figure_count(cell):
                errors.append(f"{path.name} cell {index}: draws no figure")
                continue
            wrong = problems(text)
            if wrong:
                errors.append(f"{path.name} cell {index}: {'; '.join(wrong)}")
            elif set_alt(cell, text):
                changed[path] = notebook
    if errors:
        return errors
    for path, notebook in changed.items():
        nbformat.write(notebook, path)
        print(f"alt_text: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return []


def listing(paths: list[pathlib.Path]) -> tuple[list[str], int]:
    """The lines ``--list`` prints, and how many figure cells lack an acceptable text."""
    lines, wanting = [], 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        lines.append(f"{path.name}")
        for index, cell in figure_cells(notebook):
            text = alt_text(cell)
            wrong = problems(text)
            wanting += bool(wrong)
            figures = figure_count(cell)
            plural = "s" if figures > 1 else ""
            head = f"  cell {index} (id {cell.get('id', '-')}, {figures} figure{plural})"
            lines.append(f"{head}: {text if text else 'MISSING'}")
            if text and wrong:
                lines.append(f"    ! {'; '.join(wrong)}")
    for path, number, alt, target in markdown_images():
        wrong = problems(alt, min_words=MIN_MARKDOWN_WORDS, sentence=False)
        wanting += bool(wrong)
        lines.append(f"{path.relative_to(ROOT)}:{number} {target}: {alt or 'MISSING'}"
                     + (f"  ! {'; '.join(wrong)}" if alt and wrong else ""))
    return lines, wanting


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", nargs="*", metavar="NOTEBOOK",
                        help="print every figure cell and its alt text (default: every notebook)")
    action.add_argument("--set", nargs=3, metavar=("NOTEBOOK", "CELL", "TEXT"),
                        help="set one cell's alt text; CELL is the cell's id or index")
    action.add_argument("--from", dest="mapping", type=pathlib.Path, metavar="FILE.json",
                        help='set many: {"notebooks/NN_x.ipynb": {"CELL": "TEXT"}}')
    args = parser.parse_args(argv)
    if args.list is not None:
        lines, wanting = listing([resolve(name) for name in args.list] or notebook_paths())
        print("\n".join(lines))
        print(f"alt_text: {wanting} figure(s) without acceptable alt text")
        return 0
    if args.set:
        texts = {args.set[0]: {args.set[1]: args.set[2]}}
    else:
        texts = json.loads(args.mapping.read_text(encoding="utf-8"))
    errors = apply(texts)
    for error in errors:
        print(f"alt_text: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
