"""The Lambda zips for Terraform (`make package`: the queue worker's and the lifecycle watch's): contents,
reproducible bytes, and that each handler imports on Python 3.13."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ZIP = ROOT / "build" / "sqs_worker.zip"
WATCH_ZIP = ROOT / "build" / "model_watch.zip"

pytestmark = pytest.mark.slow


def _python313() -> str:
    """The python3.13 the Makefile compiles the bundle with; empty when none works on this machine."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "python313"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def bundles() -> dict[str, zipfile.ZipFile]:
    """Both zips, built by one `make package`."""
    for path in (ZIP, WATCH_ZIP):
        path.unlink(missing_ok=True)
    subprocess.run(["make", "--no-print-directory", "package"], cwd=ROOT, check=True, capture_output=True)
    return {"sqs_worker": zipfile.ZipFile(ZIP), "model_watch": zipfile.ZipFile(WATCH_ZIP)}


@pytest.fixture(scope="module")
def bundle(bundles: dict[str, zipfile.ZipFile]) -> zipfile.ZipFile:
    return bundles["sqs_worker"]


def _runtime_packages(runtime: Path) -> Path:
    """What the Lambda runtime adds: boto3 and its dependencies (taken from this environment)."""
    runtime.mkdir()
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        source = site / package
        (shutil.copytree if source.is_dir() else shutil.copy)(source, runtime / package)
    return runtime


def test_zip_holds_handler_core_and_dependencies_but_not_the_runtime_or_dev_tools(bundle: zipfile.ZipFile) -> None:
    names = set(bundle.namelist())
    assert {"sqs_worker/app.py", "imagegen/service.py", "imagegen/queue.py", "imagegen/models/amazon.py"} <= names
    assert "aws_lambda_powertools/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & {"boto3", "botocore", "s3transfer", "tests", "moto", "PIL"}
    # The core and the handler only: the developer tooling lives in packages of its own, never copied.
    assert not top_level & {"bedrock_emulator", "local_stack", "imagegen_cli", "generate_image", "bench"}
    # Bytecode for the Lambda runtime's Python only (hash-checked pycs, so the zip stays reproducible).
    cached = [name for name in names if "__pycache__" in name]
    if _python313():
        assert "imagegen/__pycache__/service.cpython-313.pyc" in cached
        assert all(name.endswith(".cpython-313.pyc") for name in cached)
    else:  # no working python3.13 here: the build says so and ships sources only
        assert cached == []


def test_without_a_working_python313_the_bundle_ships_sources_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    result = subprocess.run(
        ["make", "--no-print-directory", "PYTHON313=", f"ARTIFACTS_DIR={target}", "build-GenerateImageFunction"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "warning: no working python3.13 found; the bundle ships without bytecode" in result.stderr
    assert (target / "generate_image" / "app.py").is_file()
    assert not list(target.rglob("__pycache__"))


def test_the_watch_zip_holds_its_handler_the_core_and_powertools_but_no_other_handler(
    bundles: dict[str, zipfile.ZipFile],
) -> None:
    names = set(bundles["model_watch"].namelist())
    assert {"model_watch/app.py", "imagegen/model_status.py", "imagegen/chain.py", "imagegen/config.py"} <= names
    assert "aws_lambda_powertools/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & {"boto3", "botocore", "tests", "moto", "PIL", "bedrock_emulator", "local_stack"}
    assert not top_level & {"sqs_worker", "generate_image", "imagegen_cli", "bench"}
    assert "model_watch" not in {name.split("/", 1)[0] for name in bundles["sqs_worker"].namelist()}
    if _python313():
        assert "model_watch/__pycache__/app.cpython-313.pyc" in names


def test_building_twice_gives_identical_bytes(bundles: dict[str, zipfile.ZipFile]) -> None:
    first = {path: path.read_bytes() for path in (ZIP, WATCH_ZIP)}
    for path in first:
        path.unlink()
    subprocess.run(["make", "--no-print-directory", "package"], cwd=ROOT, check=True, capture_output=True)
    assert {path: path.read_bytes() for path in first} == first


def test_handler_imports_on_python_313_with_only_the_runtime_boto3(bundle: zipfile.ZipFile, tmp_path: Path) -> None:
    python313 = _python313()
    if not python313:
        pytest.skip("no working python3.13 on this machine to import the bundle with (CI has one)")
    bundle.extractall(tmp_path / "task")
    runtime = _runtime_packages(tmp_path / "runtime")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{tmp_path / 'task'}:{runtime}",
        "PYTHONNOUSERSITE": "1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "BUCKET_NAME": "b",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        "JOBS_TABLE_NAME": "jobs",
    }
    script = "import sqs_worker.app as app; print(type(app.worker()).__name__)"
    result = subprocess.run([python313, "-s", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "QueueWorker"


def test_the_watch_imports_on_python_313_with_only_the_runtime_boto3(
    bundles: dict[str, zipfile.ZipFile], tmp_path: Path
) -> None:
    python313 = _python313()
    if not python313:
        pytest.skip("no working python3.13 on this machine to import the bundle with (CI has one)")
    bundles["model_watch"].extractall(tmp_path / "task")
    runtime = _runtime_packages(tmp_path / "runtime")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{tmp_path / 'task'}:{runtime}",
        "PYTHONNOUSERSITE": "1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:imagegen-alerts",
        "MODEL_WATCH_DAYS": "45",
    }
    script = "import model_watch.app as app; s = app.WatchSettings.from_env(); print(len(s.entries), s.days)"
    result = subprocess.run([python313, "-s", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 45"
