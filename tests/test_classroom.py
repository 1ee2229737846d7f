"""The files that bring the course to a class are valid, checked offline.

Theory of operation
-------------------
Binder, a dev container, GitHub's workflows and the citation file are each
read by a tool that does not run here (mybinder.org, Codespaces, GitHub
Actions, Zenodo). Each test below runs the checker that tool would, offline:

* repo2docker (the builder behind Binder) with ``--no-build`` prints the
  Dockerfile it would build; its first line names the Python it chose, which
  must be one that pyproject.toml supports. repo2docker reads only an exact
  ``python=X.Y`` from a conda file: without one it falls back to its default.
* actionlint lints the instructor's CI and the Classroom workflow template.
* cffconvert validates CITATION.cff against the Citation File Format schema.

The three tools come from pyproject's ``classroom`` extra, installed by
``make test`` into their own venv (.venv-tools, named by NETSERV_TOOLS_BIN);
where they are missing, each test is skipped and says which command installs
them. The dev container's and the CI workflow's promises are read directly:
a supported Python image, a post-create command that is a make target, and a
CI matrix holding every Python the project claims.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import tomllib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TOOLS_BIN = pathlib.Path(os.environ.get("NETSERV_TOOLS_BIN", ROOT / ".venv-tools" / "bin"))
#: Seconds a checker may take: each takes about a second.
TOOL_TIMEOUT = 120
#: repo2docker's first line, e.g. "Building conda environment for python=3.13".
CHOSEN = re.compile(r"Building conda environment for python=(3\.\d+)")


def supported() -> list[str]:
    """The Python versions pyproject.toml's classifiers claim, e.g. ["3.11", "3.12"]."""
    return [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]


def tool(name: str) -> pathlib.Path:
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in {TOOLS_BIN}: `make test` installs pyproject's "
                    "classroom extra there")
    return path


def run(*command: str | pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=ROOT, capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT, check=False)


# ------------------------------------------------------------------ Binder

def test_repo2docker_chooses_a_supported_python() -> None:
    done = run(tool("repo2docker"), "--no-build", "--debug", ".")
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    chosen = CHOSEN.search(output)
    assert chosen, f"repo2docker did not build a conda environment:\n{output[:2000]}"
    assert "unspecified" not in output.split("\n", 1)[0], output[:500]
    assert chosen.group(1) in supported(), (
        f"Binder would run Python {chosen.group(1)}; netserv supports {supported()}")
    assert "binder/postBuild" in output, "Binder must install the course (binder/postBuild)"


def test_binder_pins_one_python_and_installs_the_course() -> None:
    environment = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text("utf-8"))
    pins = [d for d in environment["dependencies"] if isinstance(d, str)
            and d.startswith("python")]
    assert len(pins) == 1 and re.fullmatch(r"python=3\.\d+", pins[0]), pins
    assert pins[0].split("=")[1] in supported()
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert "-e '.[course,test]'" in post_build.read_text(encoding="utf-8")


# ------------------------------------------------------------------ dev container

def test_devcontainer_runs_the_set_up_on_a_supported_python() -> None:
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text("utf-8"))
    image = re.fullmatch(r"mcr\.microsoft\.com/devcontainers/python:(3\.\d+)", config["image"])
    assert image and image.group(1) in supported(), config["image"]
    target = re.search(r"make ([\w-]+)\s*$", config["postCreateCommand"])
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert target and re.search(rf"^{target.group(1)}:", makefile, re.M), (
        "the post-create command must end with a make target the Makefile defines")


# ------------------------------------------------------------------ workflows

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml")) + sorted(
    (ROOT / ".github" / "classroom").glob("*.yml"))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_actionlint_passes(workflow: pathlib.Path) -> None:
    done = run(tool("actionlint"), "-no-color", workflow.relative_to(ROOT))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_can_fail(tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ matrix.nothing }}\n", encoding="utf-8")
    assert run(tool("actionlint"), "-no-color", broken).returncode != 0


def test_ci_tests_every_supported_python_and_runs_the_notebooks_weekly() -> None:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text("utf-8"))
    matrix = ci["jobs"]["test"]["strategy"]["matrix"]["python"]
    assert set(supported()) <= set(matrix), f"CI tests {matrix}; pyproject claims {supported()}"
    triggers = ci[True]  # YAML 1.1 reads the key "on" as True
    assert triggers["schedule"], "a weekly schedule"
    commands = [step.get("run", "") for job in ci["jobs"].values() for step in job["steps"]]
    for command in ("make test", "make notebooks-busy", "make site"):
        assert any(run_line.startswith(command) for run_line in commands), command


# ------------------------------------------------------------------ citation

def test_citation_file_is_valid() -> None:
    done = run(tool("cffconvert"), "--validate", "-i", "CITATION.cff")
    assert done.returncode == 0, done.stdout + done.stderr
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert "license: MIT" in citation and "CC BY 4.0" in citation


def test_cffconvert_can_fail(tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "CITATION.cff"
    broken.write_text((ROOT / "CITATION.cff").read_text(encoding="utf-8")
                      .replace("license: MIT", "license: 42"), encoding="utf-8")
    assert run(tool("cffconvert"), "--validate", "-i", broken).returncode != 0


# ------------------------------------------------------------------ the repository stands alone

#: Names of documents that live outside the repository (split so that this file
#: does not name them itself).
OUTSIDE = ("../" + "shared", "DESIGN" + ".md", "STYLE" + ".md")


def test_no_file_points_outside_the_repository() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            timeout=60, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git work tree: the files to read are git's list")
    found = []
    for name in filter(None, listed.stdout.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}: {word}" for word in OUTSIDE if word in text]
    assert not found, found
    assert "docs/design.md" in (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
