"""The worker's deployment zip (`make package`): contents, and that it imports on Python 3.13."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT / "build" / "sqs_worker.zip"

pytestmark = pytest.mark.slow


def _python313() -> str:
    """A real CPython 3.13 (the Lambda runtime's version): pyenv's, or one on PATH that is not a shim."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    on_path = shutil.which("python3.13")
    if on_path and "shims" not in on_path:
        candidates.append(Path(on_path))
    if not candidates:
        pytest.fail("Python 3.13 is required to check the Lambda bundle (pyenv install 3.13 or setup-python)")
    return str(candidates[0])


@pytest.fixture(scope="module")
def bundle() -> zipfile.ZipFile:
    subprocess.run(["make", "--no-print-directory", "package"], cwd=ROOT, check=True, capture_output=True)
    return zipfile.ZipFile(ZIP)


def test_zip_holds_handler_core_and_dependencies_but_not_the_runtime_or_dev_tools(bundle: zipfile.ZipFile) -> None:
    names = set(bundle.namelist())
    assert {"sqs_worker/app.py", "imagegen/service.py", "imagegen/queue.py", "imagegen/models/amazon.py"} <= names
    assert "aws_lambda_powertools/__init__.py" in names
    assert "aws_xray_sdk/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & {"boto3", "botocore", "s3transfer", "tests", "moto", "PIL"}
    assert not any(name.startswith(("imagegen/local/", "imagegen/cli.py")) for name in names)
    # Bytecode for the Lambda runtime's Python only (hash-checked pycs, so the zip stays reproducible).
    cached = [name for name in names if "__pycache__" in name]
    assert "imagegen/__pycache__/service.cpython-313.pyc" in cached
    assert all(name.endswith(".cpython-313.pyc") for name in cached)


def test_building_twice_gives_identical_bytes(bundle: zipfile.ZipFile) -> None:
    first = ZIP.read_bytes()
    ZIP.unlink()
    subprocess.run(["make", "--no-print-directory", "package"], cwd=ROOT, check=True, capture_output=True)
    assert ZIP.read_bytes() == first


def test_handler_imports_on_python_313_with_only_the_runtime_boto3(bundle: zipfile.ZipFile, tmp_path: Path) -> None:
    python313 = _python313()
    bundle.extractall(tmp_path / "task")
    # What the Lambda runtime adds: boto3 and its dependencies (taken from this environment).
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        source = site / package
        (shutil.copytree if source.is_dir() else shutil.copy)(source, runtime / package)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{tmp_path / 'task'}:{runtime}",
        "PYTHONNOUSERSITE": "1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "BUCKET_NAME": "b",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    }
    script = "import sqs_worker.app as app; print(type(app.worker()).__name__)"
    result = subprocess.run([python313, "-s", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "QueueWorker"
