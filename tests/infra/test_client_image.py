"""The client container: its Dockerfile's shape, hadolint, and the exact install it performs, run for real.

No Docker engine runs here, so the image itself is built by the publish workflow; this test builds the
same environment the Dockerfile builds (`uv sync --frozen --no-dev --no-editable`) and runs its entrypoint.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.tools import tool_spec, uv

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()

pytestmark = pytest.mark.slow


def instructions(name: str) -> list[str]:
    return [line.split(maxsplit=1)[1] for line in DOCKERFILE.splitlines() if line.startswith(f"{name} ")]


def test_dockerfile_is_multi_stage_slim_and_runs_as_non_root() -> None:
    bases = instructions("FROM")
    assert len(bases) >= 3
    assert bases[-1].startswith("python:${PYTHON_VERSION}-slim")
    assert instructions("USER") == ["10001"]
    assert instructions("ENTRYPOINT") == ['["imagegen", "enqueue"]']
    assert "RUN uv sync --frozen --no-dev --no-editable" in DOCKERFILE


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [uv(), "tool", "run", "--from", tool_spec("HADOLINT"), "hadolint", "Dockerfile"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /opt/venv, built by the Dockerfile's own command."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    subprocess.run(
        # --reinstall-package: uv caches the built project wheel; the image build never has that cache.
        [uv(), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet", "--reinstall-package", "imagegen"],
        cwd=ROOT, env=env, check=True, timeout=600,
    )  # fmt: skip
    return venv


@pytest.fixture(scope="module")
def moto_queue() -> Iterator[tuple[str, str]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    yield endpoint, sqs.create_queue(QueueName="prompts")["QueueUrl"]
    server.stop()


def run_entrypoint(venv: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [str(venv / "bin" / "imagegen"), "enqueue", *args],
        capture_output=True, text=True, env=clean, timeout=60, check=False, cwd="/",
    )  # fmt: skip


def test_the_image_holds_no_dev_or_local_stack_packages(client_venv: Path) -> None:
    site = next(client_venv.glob("lib/python3*/site-packages"))
    installed = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert {"imagegen", "boto3"} <= installed
    assert not installed & {"moto", "pillow", "pytest", "ruff", "mypy"}
    # The Lambda handlers' dependencies belong to the bundles, not to the client (boto3 only).
    assert not installed & {"aws_lambda_powertools", "aws_xray_sdk", "wrapt"}


def test_help_works(client_venv: Path) -> None:
    result = run_entrypoint(client_venv, "--help", env={})
    assert result.returncode == 0
    assert "usage: imagegen enqueue" in result.stdout


def test_sends_a_prompt_to_the_queue_like_the_original_client(client_venv: Path, moto_queue: tuple[str, str]) -> None:
    endpoint, queue_url = moto_queue
    env = {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "SQS_QUEUE_URL": queue_url,
    }
    result = run_entrypoint(client_venv, "A magical salmon going to the moon in a rocket", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sent message ")
    [message] = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-west-1").receive_message(QueueUrl=queue_url)[
        "Messages"
    ]
    assert message["Body"] == "A magical salmon going to the moon in a rocket"


def test_without_a_queue_url_it_says_what_to_set(client_venv: Path) -> None:
    result = run_entrypoint(client_venv, "a cat", env={"AWS_REGION": "eu-west-1"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "imagegen: no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`"
    )


def test_missing_credentials_are_one_line(client_venv: Path, moto_queue: tuple[str, str]) -> None:
    _, queue_url = moto_queue
    result = run_entrypoint(
        client_venv,
        "a cat",
        env={"SQS_QUEUE_URL": queue_url, "AWS_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("imagegen: no AWS credentials")
