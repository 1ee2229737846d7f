"""tools/fetch_pythons.py and tools/interpreters.py: the interpreters of the multi-version runs.

What can be checked without the network: apt is given a configuration of its
own (nothing of the host's but its keyring and mirror, read), the host's
sources are read in both formats, a host where the fetch cannot work gets a
SKIP line and exit status 0, and the interpreter discovery looks in the
folder the fetch fills.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"netserv_tools_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


fetch = load_tool("fetch_pythons")
interpreters = load_tool("interpreters")


def test_apt_gets_its_own_sources_state_and_cache(tmp_path: pathlib.Path) -> None:
    options = dict(option.removeprefix("-o").split("=", 1)
                   for option in fetch.apt_options(tmp_path))
    dirs = {key: value for key, value in options.items() if key.startswith("Dir::")}
    assert {"Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::State",
            "Dir::State::Lists", "Dir::State::status", "Dir::Cache"} <= dirs.keys()
    for key, value in dirs.items():
        assert value == "/dev/null" or pathlib.Path(value).is_relative_to(tmp_path), key


def test_the_host_mirror_is_read_from_deb822_sources(tmp_path: pathlib.Path) -> None:
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: x-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: x\n"
        "Signed-By: /usr/share/keyrings/some.gpg\n")
    assert fetch.debian_mirror(tmp_path) == ("http://mirror.invalid/debian",
                                             "/usr/share/keyrings/some.gpg")


def test_the_host_mirror_is_read_from_a_one_line_sources_list(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# a comment\ndeb [arch=amd64] http://mirror.invalid/debian/ x main\n")
    assert fetch.debian_mirror(tmp_path) == ("http://mirror.invalid/debian/",
                                             fetch.DEFAULT_KEYRING)


def test_no_debian_mirror_is_a_reason_to_skip(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fetch.Skip, match="no Debian archive"):
        fetch.debian_mirror(tmp_path)


def test_a_host_that_cannot_fetch_says_skip_and_exits_zero(
        monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fetch, "PYTHONS", tmp_path / ".pythons")
    monkeypatch.setattr(fetch.sys, "platform", "darwin")
    monkeypatch.setattr(fetch.sys, "argv", ["fetch_pythons.py"])
    assert fetch.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("fetch_pythons: SKIP") and "Linux only" in out
    assert not (tmp_path / ".pythons").exists()


def test_discovery_covers_every_supported_version_and_the_fetched_folder() -> None:
    assert interpreters.MINORS == (11, 12, 13, 14, 15)
    assert interpreters.FETCHED == fetch.PYTHONS
    assert fetch.VERSIONS == ("3.14", "3.15")
