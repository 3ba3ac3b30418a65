"""The import-layers contract (pyproject.toml, ``[tool.importlinter]``): dependencies point down only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import ROOT

PACKAGES = (
    "imagegen",
    "generate_image",
    "sqs_worker",
    "model_watch",
    "bedrock_emulator",
    "local_stack",
    "imagegen_cli",
)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(tree / "pyproject.toml")]
    return subprocess.run(
        command, cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def copy_tree(destination: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_the_tree_keeps_the_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("imagegen/config.py", "sqs_worker.app"),  # the core reaching up into a handler
        ("imagegen/storage.py", "local_stack.stack"),  # the core reaching into the tooling
        ("generate_image/app.py", "sqs_worker.app"),  # one handler into the other
        ("sqs_worker/app.py", "bedrock_emulator.server"),  # a handler into the tooling
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, imported: str) -> None:
    tree = copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\nimport {imported}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert imported in result.stdout
