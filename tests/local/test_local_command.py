"""The `imagegen` CLI without the stack of test_local_stack.py: `imagegen local` serves a stack of its own and
stops it cleanly on Ctrl-C, and with no stack to talk to it says what to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.local.local_stack_support import post


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture, as test_local_stack.py does: `imagegen local` sets the environment
    its handlers need."""


def test_cli_without_a_target_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQS_", "IMAGEGEN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "imagegen_cli", "--state-file", str(tmp_path / "none.json"), "enqueue", "a cat"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "imagegen: no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`"
    )


def test_imagegen_local_serves_then_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen_cli", "--state-file", str(state), "local",
         "--api-port", "0", "--aws-port", "0", "--bedrock-port", "0", "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("starting moto, the Bedrock emulator, the API and the queue")
        running = process.stdout.readline()  # blocks until every service is up
        assert running.startswith("imagegen local stack is running after "), (
            process.stderr.read() if process.stderr else ""
        )
        endpoints = json.loads(state.read_text())
        assert {"api_url", "api_key", "queue_url", "dlq_url", "bucket", "aws_endpoint_url"} <= endpoints.keys()
        status, body = post(endpoints["api_url"], '{"prompt": "a cat"}', key=endpoints["api_key"])
        assert status == 200, body
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not state.exists()
    # Every service stopped with it: nothing listens on their ports any more.
    for url in (endpoints["api_url"], endpoints["aws_endpoint_url"], endpoints["bedrock_endpoint_url"]):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=5)
