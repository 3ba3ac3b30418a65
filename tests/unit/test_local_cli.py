"""``imagegen local`` and ``imagegen demo`` take the emulator's own flags (``bedrock_emulator.cli``, defined once)
and hand them to the stack's emulator config; the stack's default Bedrock port is the emulator's."""

from __future__ import annotations

import argparse

import pytest

from bedrock_emulator.cli import _parser as emulator_parser
from bedrock_emulator.config import AGREEMENTS_VAR, DEFAULT_PORT, LIFECYCLE_VAR
from imagegen_cli.local import stack_config
from imagegen_cli.main import build_parser, main
from local_stack.config import StackConfig

CORE = "stability.stable-image-core-v1:1"


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def subcommand(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = commands.choices[name]
    return parser


@pytest.mark.parametrize("command", ["local", "demo"])
def test_local_and_demo_take_every_flag_of_the_emulators_config(command: str) -> None:
    emulator_flags = options(emulator_parser()) - {"-h", "--help", "--host", "--port", "--verbose"}
    assert "--agreements" in emulator_flags
    assert emulator_flags <= options(subcommand(command))


@pytest.mark.parametrize(("flag", "expected"), [("none", ()), (CORE, (CORE,)), ("all", "all")])
def test_the_agreements_flag_reaches_the_stacks_emulator(
    monkeypatch: pytest.MonkeyPatch, flag: str, expected: object
) -> None:
    monkeypatch.setenv(AGREEMENTS_VAR, "none" if flag == "all" else "all")  # the flag wins over the variable
    args = build_parser().parse_args(["local", "--agreements", flag, "--lifecycle", f"{CORE}=LEGACY:2027-01-15"])
    config = stack_config(args).emulator
    assert config.agreements == expected
    assert str(config.lifecycle[0]) == f"{CORE}=LEGACY:2027-01-15"


def test_the_agreements_variable_reaches_the_stacks_emulator_without_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AGREEMENTS_VAR, "none")
    monkeypatch.delenv(LIFECYCLE_VAR, raising=False)
    assert stack_config(build_parser().parse_args(["local"])).emulator.agreements == ()


def test_a_bad_agreements_flag_is_one_line_naming_the_flag_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(AGREEMENTS_VAR, raising=False)
    assert main(["local", "--agreements", "amazon.nova-canvas-v1:0"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"imagegen: agreements (--agreements, {AGREEMENTS_VAR}) entry 1 ('amazon.nova-canvas-v1:0')")
    assert "needs no AWS Marketplace agreement" in line


def test_the_stacks_bedrock_port_is_the_emulators_default() -> None:
    assert StackConfig().bedrock_port == DEFAULT_PORT
