"""A newcomer's machine: a fresh copy of the repository, an empty HOME, a PATH without ``~/.local/bin`` and
without any working python3.13. ``make demo`` works, the Lambda bundle is built without bytecode and says so,
and the tests find the uv the Makefile installed.

The only thing shared with this machine is uv's download cache (``UV_CACHE_DIR``), to keep the test fast: it
changes no path the Makefile or the tests look for tools in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tools import ROOT, uv

pytestmark = pytest.mark.slow


def _fresh_copy(destination: Path) -> Path:
    """The files a clone would hold: tracked and new, not ignored ones (the working tree, not just HEAD)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _newcomer_path() -> str:
    """This PATH without ~/.local/bin, without the directory of the uv in use, and without any directory
    holding a python3.13 that runs (pyenv's shim stays: without that version selected, it exits 127)."""
    uv_dir = str(Path(uv()).parent)
    kept = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or entry == uv_dir or entry.rstrip("/").endswith(".local/bin") or ".venv" in entry:
            continue
        candidate = Path(entry) / "python3.13"
        if candidate.exists() and "shims" not in entry:
            continue
        kept.append(entry)
    return os.pathsep.join(kept)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("newcomer")
    repo = _fresh_copy(base / "repo")
    home = base / "home"
    home.mkdir()
    cache = subprocess.run([uv(), "cache", "dir"], check=True, capture_output=True, text=True).stdout.strip()
    # The machine's own settings stay (e.g. its CA bundle for PyPI); nothing that points into the old HOME or
    # names the tools this run found does.
    dropped = {"UV", "PYTHON313", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_ADDOPTS"}
    old_home = str(Path.home())
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("PYTEST_", "UV_")) and old_home not in value
    }
    env.update(HOME=str(home), PATH=_newcomer_path(), UV_CACHE_DIR=cache, TERM="dumb")
    probe = subprocess.run(
        ["bash", "-c", "command -v uv; python3.13 -c pass"], env=env, capture_output=True, text=True, check=False
    )
    assert probe.stdout.strip() == "" and probe.returncode != 0, "the newcomer's PATH still has uv or python3.13"
    return repo, env


def make(newcomer: tuple[Path, dict[str, str]], *targets: str) -> subprocess.CompletedProcess[str]:
    repo, env = newcomer
    return subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip


def test_make_demo_installs_uv_and_prints_only_human_lines(newcomer: tuple[Path, dict[str, str]]) -> None:
    result = make(newcomer, "demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    repo, env = newcomer
    assert (Path(env["HOME"]) / ".local" / "bin" / "uv").is_file()  # installed by the Makefile, found without PATH
    demo_lines = result.stdout[result.stdout.index("starting the local stack") :].splitlines()
    assert not [line for line in demo_lines if line.lstrip().startswith("{")]  # no JSON logs or EMF metrics
    # Today's reality: the chain's first model is end of life, and the images say which model made them.
    assert "model amazon.titan-image-generator-v1@us-east-1: not usable (end of life)" in demo_lines
    images = [line for line in demo_lines if line.startswith(("API image:", "Queue image:"))]
    assert [line.split(":")[0] for line in images] == ["API image", "Queue image"]
    for line in images:
        path, _, made_by = line.split(":", 1)[1].strip().partition("  ")
        assert (repo / path).is_file()
        # Each image is followed through its job record, whose id is its file name's stem.
        job_id = Path(path).name.removesuffix("-0.png")
        assert made_by == f"(job {job_id}, made by stability.stable-image-core-v1:1 in us-west-2)"


def test_without_python313_the_bundle_ships_sources_and_says_so(newcomer: tuple[Path, dict[str, str]]) -> None:
    result = make(newcomer, "package")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "warning: no working python3.13 found; the bundle ships without bytecode" in result.stderr
    repo, _ = newcomer
    assert (repo / "build" / "sqs_worker.zip").is_file()
    assert (repo / "build" / "model_watch.zip").is_file()


def test_the_tests_find_the_uv_the_makefile_installed(newcomer: tuple[Path, dict[str, str]]) -> None:
    result = make(newcomer, "test-unit")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    result = make(newcomer, "test-infra", "PYTEST_ADDOPTS=-k test_hadolint_is_clean")  # runs `uv tool run`
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
