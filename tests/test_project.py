"""The project's set-up files agree with each other.

Theory of operation
-------------------
The set-up is spread over several files that nobody reads together:
pyproject.toml (the package, its extras and their pinned ranges),
environment.yml (the same for conda), the Makefile and .ci/run (the commands),
README.md (what a newcomer types first). Each test below parses two of them
and checks one promise that links them, so that editing one file and
forgetting the other fails here instead of on a student's machine.

It also checks the promise made to everyone who reuses netserv: the package
itself needs nothing beyond the standard library.
"""

from __future__ import annotations

import ast
import configparser
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Third-party modules netserv may import, only inside the functions that draw
#: or display (a learner's own code never triggers them).
DRAWING_MODULES = {"matplotlib", "numpy", "IPython"}
#: "name>=1.0,<2" -> ("name", ">=1.0,<2"); extras and spaces are not used in our pins.
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\S*)\s*$")
#: A pip line in environment.yml that installs this project with extras: "-e .[course,test]".
PROJECT_WITH_EXTRAS = re.compile(r"^(?:-e\s+)?\.\[([a-z0-9_,\s-]+)\]$")


def requirement(text: str) -> tuple[str, str]:
    match = REQUIREMENT.match(text)
    assert match, f"cannot parse requirement {text!r}"
    return match.group(1).lower().replace("_", "-"), match.group(2)


def conda_dependencies() -> dict[str, str]:
    """Conda packages of environment.yml: name -> version range."""
    return dict(requirement(item) for item in ENVIRONMENT["dependencies"] if isinstance(item, str))


def pip_lines() -> list[str]:
    """The pip: section of environment.yml."""
    lines: list[str] = []
    for item in ENVIRONMENT["dependencies"]:
        if isinstance(item, dict):
            lines += [line.strip().strip("'\"") for line in item.get("pip", [])]
    return lines


def extras_installed_by_pip() -> set[str]:
    extras: set[str] = set()
    for line in pip_lines():
        match = PROJECT_WITH_EXTRAS.match(line)
        if match:
            extras |= {name.strip() for name in match.group(1).split(",")}
    return extras


def python_range() -> tuple[tuple[int, int], tuple[int, int]]:
    """environment.yml's python>=A.B,<C.D as ((A, B), (C, D))."""
    spec = conda_dependencies()["python"]
    match = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec)
    assert match, f"environment.yml: python range {spec!r} should read >=3.X,<3.Y"
    return (3, int(match.group(1))), (3, int(match.group(2)))


def readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


# ------------------------------------------------------------ pyproject <-> environment.yml

@pytest.mark.parametrize("extra", ["course", "test"])
def test_environment_installs_every_pinned_package_of(extra: str) -> None:
    """Each pinned package of the extra is in environment.yml with the same range,
    or environment.yml lets pip install the extra itself (same ranges by construction)."""
    if extra in extras_installed_by_pip():
        return
    conda = conda_dependencies()
    for pinned in PYPROJECT["project"]["optional-dependencies"][extra]:
        name, spec = requirement(pinned)
        assert name in conda, f"environment.yml lacks {name} (extra {extra!r} pins {spec})"
        assert conda[name] == spec, (
            f"{name}: environment.yml has {conda[name]!r}, pyproject {spec!r}")


def test_environment_pins_no_other_range_than_pyproject() -> None:
    pinned = {name: spec for extra in PYPROJECT["project"]["optional-dependencies"].values()
              for name, spec in map(requirement, extra)}
    for name, spec in conda_dependencies().items():
        if name in pinned:
            assert spec == pinned[name], (
                f"{name}: environment.yml {spec!r}, pyproject {pinned[name]!r}")


def test_python_range_is_the_same_everywhere() -> None:
    lowest, beyond = python_range()
    assert PYPROJECT["project"]["requires-python"] == f">={lowest[0]}.{lowest[1]}"
    supported = [f"3.{minor}" for minor in range(lowest[1], beyond[1])]
    classifiers = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
                   if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert classifiers == supported
    # The README writes the range with an en dash, as typeset text does.
    assert f"Python {supported[0]}–{supported[-1]}" in README, (  # noqa: RUF001
        f"README.md should say 'Python {supported[0]}–{supported[-1]}'")  # noqa: RUF001
    assert sys.version_info[:2] in [(3, minor) for minor in range(lowest[1], beyond[1])], (
        "these tests run on a Python the project does not claim to support")


# ------------------------------------------------------------ commands

def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", MAKEFILE, re.M))


def test_makefile_has_the_documented_targets() -> None:
    assert {"lab", "test", "notebooks", "nav", "check", "starters", "clean"} <= make_targets()


def recipe(target: str) -> str:
    found = re.search(rf"^{target}:.*?(?=^\S|\Z)", MAKEFILE, re.M | re.S)
    assert found, f"no {target} target"
    return found.group(0)


def test_makefile_lab_allows_root_by_itself(tmp_path: pathlib.Path) -> None:
    # Run the recipe with a stand-in jupyter that prints its arguments.
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "jupyter"
    fake.write_text("#!/bin/sh\necho \"jupyter $*\"\n", encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / "bin" / "python").touch()  # so that make does not create a venv here
    (tmp_path / "stamp").touch()
    done = subprocess.run(["make", "-s", "--no-print-directory", "lab", f"VENV={tmp_path}",
                           f"COURSE_STAMP={tmp_path}/stamp"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, MAKEFLAGS=""), check=False)
    assert done.returncode == 0, done.stderr
    command = [line for line in done.stdout.splitlines() if line.startswith("jupyter lab")]
    assert len(command) == 1, done.stdout
    assert "--ServerApp.ip=127.0.0.1" in command[0]
    if os.getuid() == 0:
        assert "--allow-root" in command[0].split(), "as root, make lab adds --allow-root itself"
        said = [line for line in done.stdout.splitlines()
                if "allow-root" in line and line != command[0]]
        assert len(said) == 1, "and says so in one line"
    else:
        assert "--allow-root" not in command[0].split()


def test_make_check_names_one_exercise(tmp_path: pathlib.Path) -> None:
    # The recipe with a missing or unknown EX: a message and exit 2, before any pytest run.
    (tmp_path / "stamp").touch()  # stands for the installed .venv...
    python = tmp_path / "python"  # ...and its Python, which must not run
    python.write_text("#!/bin/sh\nexit 3\n", encoding="utf-8")
    python.chmod(0o755)
    for ex, message in (("", "say which exercise"), ("99", "no exercise '99'")):
        done = subprocess.run(["make", "-s", "--no-print-directory", "check", f"EX={ex}",
                               f"PY={python}", f"TEST_STAMP={tmp_path}/stamp"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, MAKEFLAGS=""), check=False)
        assert done.returncode != 0 and message in done.stdout, done.stdout + done.stderr


def test_makefile_serves_lab_on_loopback_only() -> None:
    lab_recipe = re.search(r"^lab:.*?(?=^\S|\Z)", MAKEFILE, re.M | re.S)
    assert lab_recipe and "--ServerApp.ip=127.0.0.1" in lab_recipe.group(0)
    assert "0.0.0.0" not in MAKEFILE


def test_makefile_refers_to_files_that_exist() -> None:
    referred = set(re.findall(r"\b((?:tools|notebooks)/[\w./-]+\.(?:py|cfg))\b", MAKEFILE))
    assert {"tools/run_notebooks.py", "tools/nav.py", "notebooks/nbval_sanitize.cfg"} <= referred
    missing = sorted(path for path in referred if not (ROOT / path).exists())
    assert not missing, f"the Makefile refers to missing files: {missing}"


def test_nbval_sanitize_file_compiles() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "notebooks" / "nbval_sanitize.cfg", encoding="utf-8")
    assert parser.sections(), "no sanitize rules"
    for section in parser.sections():
        assert {"regex", "replace"} <= set(parser[section]), f"[{section}] needs regex and replace"
        re.compile(parser[section]["regex"])


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    commands = [line.strip() for line in script.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert "make test" in commands


def test_readme_quick_start_is_exactly_make_lab_and_make_test() -> None:
    section = readme_section("Quick start")
    blocks = re.findall(r"^```\w*\n(.*?)^```", section, re.M | re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]


def test_readme_lists_every_notebook() -> None:
    section = readme_section("Course contents")
    missing = [path.name for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
               if f"`{path.name}`" not in section]
    assert not missing, f"README.md's course table lacks {missing}"


def test_licences_are_present() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    course = (ROOT / "LICENSE-course").read_text(encoding="utf-8")
    assert "CC BY 4.0" in course and "creativecommons.org/licenses/by/4.0" in course


# ------------------------------------------------------------ netserv needs only the stdlib

def test_netserv_declares_no_runtime_dependencies() -> None:
    assert PYPROJECT["project"]["dependencies"] == []


def imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(top-level package, imported at module level?) for every absolute import."""
    found = []
    inside_function: set[int] = set()
    type_checking_only: set[int] = set()  # under `if TYPE_CHECKING:`: never imported at run time
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside_function |= {id(child) for child in ast.walk(node) if child is not node}
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking_only |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_checking_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], id(node) not in inside_function) for name in names]
    return found


@pytest.mark.parametrize("module", sorted((ROOT / "netserv").glob("*.py")),
                         ids=lambda path: path.name)
def test_netserv_imports_only_the_standard_library(module: pathlib.Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"netserv", "__future__"}
    for name, at_module_level in imports(ast.parse(module.read_text(encoding="utf-8"))):
        if name in allowed:
            continue
        assert not at_module_level, f"{module.name} imports {name} at module level"
        assert name in DRAWING_MODULES, f"{module.name} imports {name}, not a drawing library"


# ------------------------------------------------------------ netserv's modules form no loop

def module_name(path: pathlib.Path) -> str:
    """``netserv/lab/trace.py`` -> ``netserv.lab.trace``; a package's ``__init__``: the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def netserv_imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """Every netserv module ``path`` imports, wherever the import stands.

    An import inside a function or under ``if TYPE_CHECKING:`` counts too: it
    is still a dependency, and a loop through one is a layering fault even
    when Python happens to resolve it at run time.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from package import name``: the submodule when there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in modules and target != name}
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def netserv_import_graph() -> dict[str, set[str]]:
    paths = sorted((ROOT / "netserv").rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): netserv_imports(path, modules) for path in paths}


def test_import_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_import_graph_sees_relative_and_deferred_imports() -> None:
    graph = netserv_import_graph()
    assert "netserv.base" in graph["netserv.tcp"]  # from .base import ...
    assert "netserv.eventdriven" in graph["netserv.lab.demo"]  # from .. import eventdriven
    assert "netserv.lab.trace_events" in graph["netserv.lab.trace"]


def test_netserv_modules_import_each_other_without_a_loop() -> None:
    """Each module sits above what it uses, so each can be read (and taught)
    after its dependencies: no two modules import each other, even inside a
    function or only for type checking."""
    assert import_cycles(netserv_import_graph()) == []
