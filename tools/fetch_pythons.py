"""Fetch CPython 3.14 and 3.15 (Debian's builds) into .pythons/, for the multi-version tests.

    python tools/fetch_pythons.py           # fetch once; a second run does nothing
    python tools/fetch_pythons.py --force   # fetch again

Theory of operation
-------------------
Debian's development suite ("sid") ships CPython 3.14 and 3.15 as binary
packages. They are built against sid's C library, newer than a stable
release's, so they cannot be installed on one; they can be *run* from a
private folder through sid's own dynamic loader. Nothing is installed
system-wide and the host's apt configuration is never changed:

1. A private apt configuration in ``.pythons/apt/``: its own sources list (the
   sid suite of the Debian mirror the host already uses, checked with the
   host's Debian keyring), its own state and cache directories, all passed
   with ``-o Dir::...`` options. ``apt-get update`` and ``apt-get download``
   then read and write only there.
2. The .deb files: for each version python3.X-minimal, libpython3.X-minimal,
   -stdlib, -testsuite (CPython's own ``test`` package) and python3.X-venv
   (ensurepip), the pip and setuptools wheels ensurepip installs, and sid's
   C library with the shared libraries the interpreter loads (SID_LIBRARIES).
   Each is unpacked with ``dpkg-deb -x`` into ``.pythons/root/`` (no
   maintainer scripts run).
3. A wrapper per version, ``.pythons/3.X/bin/python3.X``: a shell script that
   runs ``root/usr/bin/python3.X`` through ``root``'s loader with
   ``--library-path`` and ``--argv0 <the wrapper>``. ``--argv0`` makes
   ``sys.executable`` the wrapper, so subprocesses, multiprocessing and
   CPython's test helpers come back through it. ``.pythons/3.X/lib/python3.X``
   is a link to the unpacked standard library: Python finds its library from
   its executable's folder, so ``sys.prefix`` is ``.pythons/3.X`` (also under
   ``-E`` and ``-I``), and ``python3.X -m venv`` makes a real venv whose
   interpreter is a link to the wrapper.
4. ensurepip takes its wheels from a folder compiled into the build
   (``WHEEL_PKG_DIR``, ``/usr/share/python-wheels/``). The private copy of
   the build's sysconfig data is pointed at the private copy of that folder,
   so that a venv gets sid's pip, not whatever the host has there.
5. Each wrapper must answer with its version; then a stamp file records the
   fetch, the downloads and apt's lists are deleted, and later runs stop at
   the stamp.

Where this cannot work (not Linux, no apt-get or dpkg-deb, no Debian mirror
configured, no network, a package missing), it prints ``SKIP`` with the reason
and exits 0: the callers then report those versions as missing, visibly.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Everything this tool makes, git-ignored.
PYTHONS = ROOT / ".pythons"

#: The versions fetched (the older ones come from the machine or pyenv).
VERSIONS = ("3.14", "3.15")

#: Debian's suite that carries them.
SUITE = "sid"

#: Per version: the interpreter, its standard library, CPython's test
#: package, and ensurepip (the -venv package).
PYTHON_PACKAGES = ("python{v}-minimal", "libpython{v}-minimal", "libpython{v}-stdlib",
                   "libpython{v}-testsuite", "python{v}-venv")

#: sid's C library and the shared libraries the interpreter and its extension
#: modules load (from ``apt-cache depends`` of the packages above), the data
#: files the standard library reads (media-types, netbase, tzdata), and the
#: wheels ensurepip installs into a venv.
SID_LIBRARIES = ("libc6", "libgcc-s1", "libssl3t64", "libffi8", "zlib1g", "libexpat1",
                 "libbz2-1.0", "liblzma5", "libzstd1", "libsqlite3-0", "libuuid1",
                 "libncursesw6", "libtinfo6", "libreadline8t64", "libdb5.3t64",
                 "media-types", "netbase", "tzdata", "python3-pip-whl",
                 "python3-setuptools-whl")

#: The host's apt configuration: only read, for its mirror and keyring.
HOST_APT = pathlib.Path("/etc/apt")

#: The host's Debian keyring, used when its sources name none.
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

#: Seconds apt-get may take for one step (the download is about 35 MB).
APT_TIMEOUT = 600

#: Seconds a fetched interpreter may take to print its version.
PROBE_TIMEOUT = 60

WRAPPER = """\
#!/bin/sh
# CPython {version} from Debian {suite}, run by {suite}'s own loader from a private
# folder (written by tools/fetch_pythons.py). --argv0 makes sys.executable this file.
exec "{loader}" --library-path "{libdir}" --argv0 "$0" "{python}" "$@"
"""


class Skip(Exception):
    """The fetch cannot be done here; the message says why."""


def packages() -> list[str]:
    """Every package to download, Python's first."""
    names = [name.format(v=v) for v in VERSIONS for name in PYTHON_PACKAGES]
    return names + list(SID_LIBRARIES)


def stamp_path() -> pathlib.Path:
    """The stamp of a complete fetch, named after what it fetched."""
    key = hashlib.sha256(" ".join([SUITE, *packages(), WRAPPER]).encode()).hexdigest()[:12]
    return PYTHONS / f".fetched-{key}"


def wrapper_path(version: str) -> pathlib.Path:
    return PYTHONS / version / "bin" / f"python{version}"


def debian_mirror(etc: pathlib.Path = HOST_APT) -> tuple[str, str]:
    """(URI, keyring) of the Debian archive the host's apt already uses.

    Read (never written) from the one-line (sources.list) and deb822
    (*.sources) formats in ``etc``; a URI that ends in ``/debian`` is the
    main archive (not -security).
    """
    files = [etc / "sources.list",
             *sorted((etc / "sources.list.d").glob("*.list")),
             *sorted((etc / "sources.list.d").glob("*.sources"))]
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        if file.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = dict(line.split(":", 1) for line in stanza.splitlines()
                              if ":" in line and not line.startswith(("#", " ")))
                for uri in fields.get("URIs", "").split():
                    if uri.rstrip("/").endswith("/debian"):
                        keyring = fields.get("Signed-By", "").strip()
                        # An inline key block (not a file) is not reused here.
                        return uri, keyring if keyring.startswith("/") else DEFAULT_KEYRING
        else:
            for line in text.splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 2 and words[0] == "deb" and \
                        words[1].rstrip("/").endswith("/debian"):
                    return words[1], DEFAULT_KEYRING
    raise Skip("no Debian archive in the host's apt sources")


def apt_options(apt_dir: pathlib.Path) -> list[str]:
    """``-o`` options that give apt its own sources, state and cache in apt_dir."""
    options = {
        "Dir::Etc::SourceList": apt_dir / "sources.list",
        "Dir::Etc::SourceParts": "/dev/null",  # not the host's sources.list.d
        "Dir::Etc::Preferences": "/dev/null",  # nor its pinning
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Dir::State": apt_dir,
        "Dir::State::Lists": apt_dir / "lists",
        "Dir::State::status": apt_dir / "status",  # empty: nothing is "installed"
        "Dir::Cache": apt_dir / "cache",
    }
    result = [f"-o{key}={value}" for key, value in options.items()]
    if os.geteuid() == 0:
        # As root apt downloads as the user _apt, who cannot write in a
        # private folder of root's: download as root, without the warning.
        result.append("-oAPT::Sandbox::User=root")
    return result


def run(command: list[str], what: str, cwd: pathlib.Path | None = None) -> None:
    """Run a command; on failure raise Skip with its last words."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Skip(f"{what}: {error}") from error
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise Skip(f"{what} failed: {' / '.join(last)}")


def download(work: pathlib.Path) -> list[pathlib.Path]:
    """Download the .deb files into work/debs with a private apt; return them."""
    uri, keyring = debian_mirror()
    apt_dir = work / "apt"
    for folder in ("lists/partial", "cache/archives/partial"):
        (apt_dir / folder).mkdir(parents=True, exist_ok=True)
    (apt_dir / "status").touch()
    (apt_dir / "sources.list").write_text(f"deb [signed-by={keyring}] {uri} {SUITE} main\n")
    options = apt_options(apt_dir)
    # --error-on=any: a list that could not be fetched fails the update here
    # (by default apt-get warns and exits 0, and the download fails later).
    run(["apt-get", *options, "update", "--error-on=any"], f"apt-get update ({SUITE})")
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    run(["apt-get", *options, "download", *packages()], "apt-get download", cwd=debs)
    return sorted(debs.glob("*.deb"))


def unpack(debs: list[pathlib.Path], root: pathlib.Path) -> None:
    for deb in debs:
        run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}")


def point_ensurepip_at(root: pathlib.Path, version: str) -> None:
    """Make the private build's ensurepip take the private copy of sid's wheels."""
    wheels = root / "usr" / "share" / "python-wheels"
    stdlib = root / "usr" / "lib" / f"python{version}"
    for data in stdlib.glob("_sysconfigdata_*.py"):
        text = data.read_text()
        data.write_text(text.replace("'WHEEL_PKG_DIR': '/usr/share/python-wheels/'",
                                     f"'WHEEL_PKG_DIR': '{wheels}/'"))


def write_wrapper(root: pathlib.Path, version: str) -> None:
    """.pythons/3.X: bin/python3.X (the wrapper) and lib/python3.X (the library)."""
    loaders = glob.glob(str(root / "usr" / "lib" / "*-linux-gnu" / "ld-linux*.so.*"))
    if not loaders:
        raise Skip("no dynamic loader in the unpacked C library")
    loader = pathlib.Path(loaders[0])
    home = PYTHONS / version
    shutil.rmtree(home, ignore_errors=True)
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "lib" / f"python{version}").symlink_to(root / "usr" / "lib" / f"python{version}")
    wrapper = wrapper_path(version)
    wrapper.write_text(WRAPPER.format(version=version, suite=SUITE, loader=loader,
                                      libdir=loader.parent,
                                      python=root / "usr" / "bin" / f"python{version}"))
    wrapper.chmod(0o755)


def answers(version: str) -> str | None:
    """The full version the wrapper reports, or None if it does not run."""
    try:
        done = subprocess.run([str(wrapper_path(version)), "-I", "-c",
                               "import sys, ssl, sqlite3; print(sys.version.split()[0])"],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out.startswith(version + ".") else None


def fetch() -> None:
    """Download, unpack and wrap; raise Skip with the reason if that fails."""
    if not sys.platform.startswith("linux"):
        raise Skip(f"Debian's builds run on Linux only (this is {sys.platform})")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} not found: not a Debian-family host")
    for old in PYTHONS.glob(".fetched-*"):
        old.unlink()
    work = PYTHONS / "download"
    shutil.rmtree(work, ignore_errors=True)
    root = PYTHONS / "root"
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True)
    unpack(download(work), root)
    for version in VERSIONS:
        point_ensurepip_at(root, version)
        write_wrapper(root, version)
        if answers(version) is None:
            raise Skip(f"the fetched python{version} does not run here")
    shutil.rmtree(work)  # the stamp, not the downloads, records the fetch
    stamp_path().touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="fetch even if fetched")
    args = parser.parse_args()
    if not args.force and stamp_path().exists() and all(map(answers, VERSIONS)):
        print("fetch_pythons: already fetched: " + ", ".join(
            f"python{v} {answers(v)}" for v in VERSIONS))
        return 0
    started = time.monotonic()
    try:
        fetch()
    except Skip as why:
        print(f"fetch_pythons: SKIP (python{' and python'.join(VERSIONS)} not fetched: {why})")
        return 0
    print(f"fetch_pythons: fetched in {time.monotonic() - started:.0f} s: " + ", ".join(
        f"python{v} {answers(v)} ({wrapper_path(v).relative_to(ROOT)})" for v in VERSIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
