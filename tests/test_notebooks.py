"""The committed notebooks are one clean run, navigable, and free of machine noise.

Theory of operation
-------------------
nbval (the notebook step of ``make test``) re-runs every notebook and compares
the outputs of checked cells. What it cannot see is the state of the committed
file itself: was it executed top to bottom by ``make notebooks``, is its
navigation current, does an output leak a path, a port or a timing that makes
the next run differ? This file reads each ``notebooks/NN_*.ipynb`` (without
running anything) and checks one such property per test, so that a failure
names the notebook and the rule. With no notebooks yet, every test is skipped.

The navigation rules are imported from tools/nav.py, the tool that writes
them, so the test and the tool cannot disagree.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
from collections.abc import Iterator
from types import ModuleType

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LESSONS = ROOT / "lessons"
INDEX_NAME = "00_index.ipynb"

#: Cells whose outputs nbval compares (``--nbval-lax`` checks only these). A
#: notebook needs several, or nbval proves little more than "it ran".
CHECK_TAG = "nbval-check-output"
MIN_CHECKED_CELLS = 3
#: Tags that allow a cell to end in an exception (nbval then expects one).
RAISES_TAGS = {"raises-exception", "nbval-raises-exception"}

#: Output text that differs between machines or runs: it would make the
#: committed notebook stale on the next `make notebooks`, or leak a home path.
MACHINE_SPECIFIC = {
    "a machine path": re.compile(r"/(?:work|root|tmp|home|Users)/"),
    "a loopback port": re.compile(r"127\.0\.0\.1(?::|', )\d{2,5}"),
    "a process id": re.compile(r"\bpid\b\W{0,3}\d+", re.IGNORECASE),
}
#: A duration such as "0.20 s" or "1.5ms": never deterministic, so never in a checked cell.
TIMING = re.compile(r"\d+\.\d+\s?(?:ms|µs|us|ns|s)\b")
#: What a traceback or a warning looks like once printed to a stream.
TRACEBACK_OR_WARNING = re.compile(r"Traceback \(most recent call last\)|\b\w*Warning: ")
#: A markdown link target: [text](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: A notebook's title line, "# NN · Title", and a row of the contents table in 00.
TITLE = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| \[\d\d · ([^\]]+)\]\((\d\d_\w+\.ipynb)\)", re.MULTILINE)


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"netserv_tools_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nav = load_tool("nav")
PATHS = nav.notebook_paths(NOTEBOOKS)


def read(path: pathlib.Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Code cells with something in them (nbclient does not execute empty ones)."""
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def output_texts(output: nbformat.NotebookNode) -> Iterator[str]:
    """Every piece of text in one output: streams, text MIME data, error parts."""
    if output.output_type == "stream":
        yield output.text
    elif output.output_type in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if not mime.startswith("image/") and isinstance(value, str):
                yield value
    elif output.output_type == "error":
        yield output.ename
        yield output.evalue
        yield from output.traceback


def links(notebook: nbformat.NotebookNode, *, skip_nav: bool = False) -> list[str]:
    """Relative link targets of the markdown cells, without #fragments."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown" or (skip_nav and nav.is_nav(cell)):
            continue
        for target in LINK.findall(cell.source):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (http:, mailto:) or an anchor in this page
            found.append(target.split("#", 1)[0])
    return found


def where(notebook: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> str:
    return f"cell {notebook.cells.index(cell)}"


notebooks = pytest.mark.parametrize("path", PATHS, ids=[path.name for path in PATHS])


@notebooks
def test_is_valid_nbformat(path: pathlib.Path) -> None:
    nbformat.validate(read(path))


@notebooks
def test_kernelspec_is_python3(path: pathlib.Path) -> None:
    # nbval runs with --nbval-current-env; tools/run_notebooks.py writes this name.
    name = read(path).metadata.get("kernelspec", {}).get("name")
    assert name == "python3", f"kernelspec {name!r}: run `make notebooks NB=...`"


@notebooks
def test_executed_once_top_to_bottom(path: pathlib.Path) -> None:
    cells = code_cells(read(path))
    counts = [cell.execution_count for cell in cells]
    assert None not in counts, "some code cells were never run: run `make notebooks NB=...`"
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts {counts}: not one clean run from the top; run `make notebooks NB=...`")


@notebooks
def test_no_error_outputs(path: pathlib.Path) -> None:
    notebook = read(path)
    errors = [f"{where(notebook, cell)}: {output.ename}: {output.evalue}"
              for cell in code_cells(notebook) if not tags(cell) & RAISES_TAGS
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"cells that raised (tag them raises-exception if meant): {errors}"


@notebooks
def test_no_tracebacks_or_warnings_printed(path: pathlib.Path) -> None:
    # nbval never compares stderr (notebooks/conftest.py): this is where a
    # server's printed traceback or a warning in the committed run is caught.
    notebook = read(path)
    found = [f"{where(notebook, cell)}: {match.group(0)!r}"
             for cell in code_cells(notebook) for output in cell.outputs
             if output.output_type == "stream"
             for match in [TRACEBACK_OR_WARNING.search(output.text)] if match]
    assert not found, f"printed tracebacks or warnings in the outputs: {found}"


@notebooks
def test_navigation_in_sync(path: pathlib.Path) -> None:
    expected = nav.expected_nav(PATHS)[path]
    assert nav.problems(read(path), expected) == [], "run `make nav`"


@notebooks
def test_first_and_last_cells_are_nav(path: pathlib.Path) -> None:
    cells = read(path).cells
    assert len(cells) >= 2 and nav.is_nav(cells[0]) and nav.is_nav(cells[-1]), (
        "the first and the last cell must be markdown cells tagged 'nav'")


@notebooks
def test_enough_checked_cells(path: pathlib.Path) -> None:
    checked = [cell for cell in code_cells(read(path)) if CHECK_TAG in tags(cell)]
    assert len(checked) >= MIN_CHECKED_CELLS, (
        f"{len(checked)} cell(s) tagged {CHECK_TAG}; at least {MIN_CHECKED_CELLS} needed")


@notebooks
def test_no_machine_specific_output(path: pathlib.Path) -> None:
    notebook = read(path)
    found = [f"{where(notebook, cell)}: {what} {match.group(0)!r}"
             for cell in code_cells(notebook) for output in cell.outputs
             for text in output_texts(output)
             for what, pattern in MACHINE_SPECIFIC.items()
             for match in [pattern.search(text)] if match]
    assert not found, (f"outputs that differ between machines or runs (print a message, not a "
                       f"traceback or an address): {found}")


@notebooks
def test_no_timings_in_checked_cells(path: pathlib.Path) -> None:
    notebook = read(path)
    found = [f"{where(notebook, cell)}: {match.group(0)!r}"
             for cell in code_cells(notebook) if CHECK_TAG in tags(cell)
             for output in cell.outputs for text in output_texts(output)
             for match in [TIMING.search(text)] if match]
    assert not found, f"timings in cells tagged {CHECK_TAG} (nbval compares these): {found}"


@notebooks
def test_checked_cells_show_plain_text(path: pathlib.Path) -> None:
    # nbval compares every MIME type of a checked cell: a figure's bytes or a
    # library's HTML rendering change with library versions, not with the lesson.
    notebook = read(path)
    found = [f"{where(notebook, cell)}: {output.output_type} {sorted(output.get('data', {}))}"
             for cell in code_cells(notebook) if CHECK_TAG in tags(cell)
             for output in cell.outputs
             if output.output_type in ("display_data", "execute_result")
             and set(output.get("data", {})) != {"text/plain"}]
    assert not found, f"cells tagged {CHECK_TAG} should print text only: {found}"


@notebooks
def test_links_to_a_lesson(path: pathlib.Path) -> None:
    targets = [(NOTEBOOKS / target).resolve() for target in links(read(path))]
    assert any(target.is_relative_to(LESSONS) for target in targets), (
        "no link to a lessons/ page (see the course map in CONTRIBUTING.md)")


@notebooks
def test_relative_links_resolve(path: pathlib.Path) -> None:
    missing = [target for target in links(read(path)) if not (NOTEBOOKS / target).exists()]
    assert not missing, f"links to files that do not exist: {missing}"


def test_index_links_every_notebook() -> None:
    if not (NOTEBOOKS / INDEX_NAME).exists():
        pytest.skip(f"no notebooks/{INDEX_NAME} yet")
    linked = set(links(read(NOTEBOOKS / INDEX_NAME), skip_nav=True))
    missing = [path.name for path in PATHS if path.name != INDEX_NAME and path.name not in linked]
    assert not missing, f"{INDEX_NAME} (outside its nav cells) does not link: {missing}"


def test_index_table_lists_every_notebook_by_its_title() -> None:
    if not (NOTEBOOKS / INDEX_NAME).exists():
        pytest.skip(f"no notebooks/{INDEX_NAME} yet")
    listed = {file: title for cell in read(NOTEBOOKS / INDEX_NAME).cells
              if cell.cell_type == "markdown" for title, file in TABLE_ROW.findall(cell.source)}
    for path in PATHS:
        titles = [m.group(2) for cell in read(path).cells if cell.cell_type == "markdown"
                  for m in [TITLE.search(cell.source)] if m]
        assert titles, f"{path.name}: no title line '# NN · Title'"
        assert path.name in listed, (
            f"{path.name} is missing from the contents table of {INDEX_NAME}")
        assert listed[path.name] == titles[0], (
            f"{path.name}: title {titles[0]!r}, listed in {INDEX_NAME} as {listed[path.name]!r}")


def test_checkpoint_copies_are_not_notebooks(tmp_path: pathlib.Path) -> None:
    (tmp_path / ".ipynb_checkpoints").mkdir()
    for name in ("01_x.ipynb", ".ipynb_checkpoints/01_x-checkpoint.ipynb",
                 ".ipynb_checkpoints/02_y.ipynb"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert nav.notebook_paths(tmp_path) == [tmp_path / "01_x.ipynb"]
    run_notebooks = load_tool("run_notebooks")
    assert run_notebooks.notebook_paths([], tmp_path) == [tmp_path / "01_x.ipynb"]
    named = [str(tmp_path / ".ipynb_checkpoints" / "02_y.ipynb"), str(tmp_path / "01_x.ipynb")]
    assert run_notebooks.notebook_paths(named) == [tmp_path / "01_x.ipynb"]
