"""``python -m bedrock_emulator`` in a process of its own: flags over variables, the first line a parent reads
the port from, clean exit on SIGINT/SIGTERM, a config handed over with ``EmulatorConfig.to_env`` and driven
with ``EmulatorAdmin``; and the renderer's bytes across processes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from bedrock_emulator.admin import EmulatorAdmin
from bedrock_emulator.backend import STAT_NAMES
from bedrock_emulator.cli import main
from bedrock_emulator.config import LIFECYCLE_VAR, EmulatorConfig
from bedrock_emulator.render import render_placeholder
from tests.emulator_bodies import EVERY_MODEL_ACTIVE, TITAN, titan
from tests.local.emulator.client import error_code, invoke, invoke_error, make_client

REPO = Path(__file__).resolve().parents[2]
FIRST_LINE = "Bedrock emulator listening on http://127.0.0.1:"
#: An address no interface has: should ``main`` accept a config it must refuse, it fails to bind and returns 1
#: rather than serving until a signal (which would hang the test).
UNBINDABLE = ("--host", "192.0.2.1", "--port", "0")


@contextlib.contextmanager
def emulator_process(*args: str, env: Mapping[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m bedrock_emulator --port 0 ARGS``; yields the process and the URL from its first line. Every
    model the tests invoke is ACTIVE unless ``env`` or ``ARGS`` set a lifecycle."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    if not environment.get(LIFECYCLE_VAR) and "--lifecycle" not in args:
        environment[LIFECYCLE_VAR] = EVERY_MODEL_ACTIVE
    process = subprocess.Popen(
        [sys.executable, "-m", "bedrock_emulator", "--port", "0", *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first_line = process.stdout.readline()
        if not first_line:
            pytest.fail(f"the emulator exited with {process.wait(10)}: {process.stderr.read()}")
        assert first_line.startswith(FIRST_LINE), first_line
        yield process, first_line.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def png_file(path: Path, prompt: str) -> Path:
    path.write_bytes(render_placeholder(prompt, 1, 48, 32))
    return path


def test_cli_rejects_bad_values(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--fault-rate", "2", *UNBINDABLE])
    assert caught.value.code == 2
    assert "fault_rate" in capsys.readouterr().err
    monkeypatch.setenv("BEDROCK_EMULATOR_LATENCY_MS", "soon")
    with pytest.raises(SystemExit):
        main(UNBINDABLE)
    assert "BEDROCK_EMULATOR_LATENCY_MS" in capsys.readouterr().err


def test_cli_rejects_an_unusable_image_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--image-file", str(tmp_path / "missing.png"), *UNBINDABLE])
    assert caught.value.code == 2
    assert "BEDROCK_EMULATOR_IMAGE_FILE" in capsys.readouterr().err


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_serves_until_interrupted_and_exits_cleanly(
    monkeypatch: pytest.MonkeyPatch, stop_signal: signal.Signals
) -> None:
    with emulator_process("--rpm", "5", "--seed", "3", env={"BEDROCK_EMULATOR_RPM": "1"}) as (process, url):
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        client = make_client()
        for _ in range(2):  # the --rpm flag (5) overrides BEDROCK_EMULATOR_RPM (1)
            assert invoke(client, TITAN, titan())["images"]
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Bedrock emulator stopped" in process.stderr.read()


def test_the_image_file_flag_overrides_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from_variable = png_file(tmp_path / "variable.png", "variable")
    from_flag = png_file(tmp_path / "flag.png", "flag")
    env = {"BEDROCK_EMULATOR_IMAGE_FILE": str(from_variable)}
    with emulator_process("--image-file", str(from_flag), env=env) as (_, url):
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        (image,) = invoke(make_client(), TITAN, titan())["images"]
        assert base64.b64decode(image) == from_flag.read_bytes()


def test_a_config_handed_over_in_the_environment_runs_in_another_process_driven_by_emulator_admin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """How the local stack starts the emulator: ``config.to_env()`` over an inherited environment."""
    image = png_file(tmp_path / "large.png", "large")
    config = EmulatorConfig(rpm=2, blocked_words=("gory",), seed=3, image_file=image)
    inherited = {"BEDROCK_EMULATOR_LATENCY_MS": "20000", "BEDROCK_EMULATOR_RPM": "1", "BEDROCK_EMULATOR_SEED": "4"}
    with emulator_process(env={**inherited, **config.to_env()}) as (process, url):
        assert process.stdout is not None
        process.stdout.readline()  # export AWS_ENDPOINT_URL_BEDROCK_RUNTIME=...
        described = process.stdout.readline()
        assert described.strip() == f"config: rpm=2, blocked_words=('gory',), seed=3, image_file={str(image)!r}"

        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        client = make_client()
        admin = EmulatorAdmin(url)
        reply = invoke(client, TITAN, titan(numberOfImages=2))
        assert [base64.b64decode(data) for data in reply["images"]] == [image.read_bytes()] * 2
        assert error_code(invoke_error(client, TITAN, titan("gory"))) == "ValidationException"
        invoke(client, TITAN, titan())
        assert error_code(invoke_error(client, TITAN, titan())) == "ThrottlingException"
        assert admin.stats() == {
            "requests": 4,
            "images": 3,
            "succeeded": 2,
            "throttled": 1,
            "faults": 0,
            "filtered": 1,
            "invalid": 0,
            "unavailable": 0,
            "agreement_requests": 0,
        }

        admin.fail_next("ServiceUnavailableException", message="down for a moment")
        error = invoke_error(client, TITAN, titan("x"))
        assert (error_code(error), error.response["Error"]["Message"]) == (
            "ServiceUnavailableException",
            "down for a moment",
        )
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert admin.stats()["faults"] == 1
        admin.reset_stats()
        assert admin.stats() == dict.fromkeys(STAT_NAMES, 0)


def test_cli_rejects_bad_lifecycle_overrides(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--lifecycle", f"{TITAN}=GONE", *UNBINDABLE])
    assert caught.value.code == 2
    assert "lifecycle (--lifecycle, BEDROCK_EMULATOR_LIFECYCLE) entry 1" in capsys.readouterr().err
    monkeypatch.setenv("BEDROCK_EMULATOR_LIFECYCLE", "x.y=EOL")
    with pytest.raises(SystemExit):
        main(UNBINDABLE)
    assert "BEDROCK_EMULATOR_LIFECYCLE entry 1 ('x.y=EOL') names 'x.y'" in capsys.readouterr().err


def test_the_lifecycle_flag_overrides_the_variable_and_is_described(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"BEDROCK_EMULATOR_LIFECYCLE": f"{TITAN}=ACTIVE"}
    with emulator_process("--lifecycle", f"{TITAN}=NO_ACCESS@us-east-1", env=env) as (process, url):
        assert process.stdout is not None
        exports = process.stdout.readline().split()
        assert exports == ["export", f"AWS_ENDPOINT_URL_BEDROCK_RUNTIME={url}", f"AWS_ENDPOINT_URL_BEDROCK={url}"]
        process.stdout.readline()  # config: ...
        described = process.stdout.readline().strip()
        assert described == f"lifecycle: the table of 2026-11-30; overrides: {TITAN}=NO_ACCESS@us-east-1"
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        assert error_code(invoke_error(make_client(), TITAN, titan())) == "AccessDeniedException"


def test_render_is_byte_identical_across_processes() -> None:
    code = (
        "import hashlib, sys; from bedrock_emulator.render import render_placeholder as r; "
        "sys.stdout.write(hashlib.sha256(r('a lighthouse', 7, 256, 192)).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert other.stdout == hashlib.sha256(render_placeholder("a lighthouse", 7, 256, 192)).hexdigest()
