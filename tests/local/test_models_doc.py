"""docs/models.md's transcript of ``imagegen models --accept-agreements`` against a fresh-account emulator is what
the commands print: the emulator (``python -m bedrock_emulator``, in a process of its own) and each ``imagegen
models`` (in this process, so that its wait runs on a fake clock) are run as the transcript says, and their output
compared line by line, ports and the seconds waited aside. The doc cannot drift from the code."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import FakeTime
from tests.local.test_models_cli import models_in_process

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "models.md"
MARKER = "<!-- transcript: checked by tests/local/test_models_doc.py"
#: What may differ between runs: the port, and how long the wait took.
VOLATILE = ((re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"), (re.compile(r"after \d+ s\b"), "after N s"))


def transcript() -> list[tuple[str, list[str]]]:
    """The transcript's commands (without ``$ ``), each with the lines it printed."""
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its transcript marker"
    block = text.split(MARKER, 1)[1].split("```console\n", 1)[1].split("\n```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"the transcript starts with output, not a command: {line!r}"
            steps[-1][1].append(line)
    return steps


def normal(lines: list[str]) -> list[str]:
    for pattern, replacement in VOLATILE:
        lines = [pattern.sub(replacement, line) for line in lines]
    return lines


@pytest.fixture
def emulator_command() -> Iterator[list[str]]:
    """The transcript's first command, ``python -m bedrock_emulator ... &``, as argv (on a free port)."""
    command, _ = transcript()[0]
    argv = shlex.split(command.removesuffix("&"))
    assert argv[:3] == ["python", "-m", "bedrock_emulator"], command
    yield [sys.executable, *argv[1:], "--port", "0"]


def test_the_transcript_is_what_the_commands_print(
    emulator_command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (_, emulator_lines), *steps = transcript()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("BEDROCK_EMULATOR_")}
    process = subprocess.Popen(
        emulator_command,
        cwd=ROOT,
        env={**environment, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline().rstrip("\n") for _ in emulator_lines]
        assert normal(printed) == normal(emulator_lines)
        url = printed[0].split()[-1]
        status = None
        ran = []
        for command, expected in steps:
            argv = shlex.split(command)
            if argv[0] == "export":
                assert normal([command]) == normal([f"export AWS_ENDPOINT_URL_BEDROCK={url}"])
                output = []
            elif argv == ["echo", "$?"]:
                output = [str(status)]
            else:
                assert argv[:2] == ["imagegen", "models"], command
                status, out, err = models_in_process(url, capsys, monkeypatch, *argv[2:], time=FakeTime())
                output = (out + err).splitlines()
                ran.append(argv[2:])
            assert normal(output) == normal(expected), command
        assert ran == [[], ["--accept-agreements"], ["--accept-agreements"]]  # fresh, accepting, idempotent
    finally:
        process.terminate()
        process.wait(timeout=10)
