"""``EmulatorConfig``: flag over ``BEDROCK_EMULATOR_*`` variable over default, and back to the variables."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bedrock_emulator.config import ENV_VARS, EmulatorConfig
from bedrock_emulator.lifecycle import Override, State, parse_overrides
from bedrock_emulator.render import render_placeholder
from tests.emulator_bodies import CORE, NOVA, TITAN

#: Lifecycle overrides of every kind: each state, the table's regions, listed regions, every region, a model the
#: table lacks.
OVERRIDES = parse_overrides(
    f"{TITAN}=EOL,{NOVA}=LEGACY_INACTIVE,{CORE}=NO_ACCESS@us-west-2,stability.sd3-5-large-v1:0=LEGACY@*,"
    "amazon.titan-image-generator-v1:0=ACTIVE",
    name="test",
)
INHERITED = (Override(CORE, State.EOL),)


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.png"
    path.write_bytes(render_placeholder("x", 1, 16, 16))
    return path


def test_config_from_env_reads_every_variable() -> None:
    config = EmulatorConfig.from_env(
        {
            "BEDROCK_EMULATOR_LATENCY_MS": "250",
            "BEDROCK_EMULATOR_RPM": "60",
            "BEDROCK_EMULATOR_FAULT_RATE": "0.25",
            "BEDROCK_EMULATOR_BLOCKED_WORDS": "Gore, violence,,",
            "BEDROCK_EMULATOR_SEED": "7",
        }
    )
    assert config == EmulatorConfig(latency_ms=250, rpm=60, fault_rate=0.25, blocked_words=("gore", "violence"), seed=7)
    assert EmulatorConfig.from_env({}) == EmulatorConfig()


def test_from_env_reads_the_image_file_variable(png_file: Path) -> None:
    config = EmulatorConfig.from_env({"BEDROCK_EMULATOR_IMAGE_FILE": str(png_file)})
    assert config == EmulatorConfig(image_file=png_file)
    assert config.image_file == png_file


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDROCK_EMULATOR_RPM", "12")
    assert EmulatorConfig.from_env().rpm == 12
    assert EmulatorConfig.from_env({}).rpm == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BEDROCK_EMULATOR_LATENCY_MS", "fast"),
        ("BEDROCK_EMULATOR_LATENCY_MS", "-1"),
        ("BEDROCK_EMULATOR_RPM", "1.5"),
        ("BEDROCK_EMULATOR_RPM", "-3"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "1.01"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "nan"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "often"),
        ("BEDROCK_EMULATOR_SEED", "abc"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        EmulatorConfig.from_env({name: value})


@pytest.mark.parametrize(
    "kwargs", [{"latency_ms": -1}, {"rpm": -1}, {"fault_rate": 1.5}, {"fault_rate": -0.1}, {"latency_ms": True}]
)
def test_bad_config_values_name_the_field(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EmulatorConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency_ms": 3_600_001},
        {"rpm": 1_000_001},
        {"seed": "7"},
        {"blocked_words": "gory"},
        {"blocked_words": ("a,b",)},
        {"fault_rate": float("nan")},
    ],
)
def test_values_the_environment_could_not_carry_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EmulatorConfig(**kwargs)


# ---- precedence: override > environment > default ---------------------------------------------

#: (field, its variable's value, the config value it gives, an override, the default)
PRECEDENCE = [
    ("latency_ms", "250", 250, 40, 0),
    ("rpm", "60", 60, 5, 0),
    ("fault_rate", "0.25", 0.25, 0.5, 0.0),
    ("blocked_words", "gore,violence", ("gore", "violence"), ("blood",), ()),
    ("seed", "7", 7, 0, None),
    ("lifecycle", f"{TITAN}=ACTIVE", (Override(TITAN, State.ACTIVE),), (Override(NOVA, State.LEGACY),), ()),
]


@pytest.mark.parametrize(("field", "raw", "from_variable", "override", "default"), PRECEDENCE)
def test_an_override_beats_the_variable_which_beats_the_default(
    field: str, raw: str, from_variable: Any, override: Any, default: Any
) -> None:
    env = {ENV_VARS[field]: raw}
    assert getattr(EmulatorConfig.from_env({}), field) == default
    assert getattr(EmulatorConfig.from_env(env), field) == from_variable
    assert getattr(EmulatorConfig.from_env(env, **{field: override}), field) == override
    assert getattr(EmulatorConfig.from_env({}, **{field: override}), field) == override


@pytest.mark.parametrize(("field", "raw", "from_variable", "override", "default"), PRECEDENCE)
def test_a_none_override_means_not_given(field: str, raw: str, from_variable: Any, override: Any, default: Any) -> None:
    assert getattr(EmulatorConfig.from_env({ENV_VARS[field]: raw}, **{field: None}), field) == from_variable
    assert getattr(EmulatorConfig.from_env({}, **{field: None}), field) == default


def test_image_file_precedence(png_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.png"
    other.write_bytes(png_file.read_bytes())
    env = {"BEDROCK_EMULATOR_IMAGE_FILE": str(png_file)}
    assert EmulatorConfig.from_env({}).image_file is None
    assert EmulatorConfig.from_env(env).image_file == png_file
    assert EmulatorConfig.from_env(env, image_file=None).image_file == png_file
    assert EmulatorConfig.from_env(env, image_file=str(other)).image_file == other
    assert EmulatorConfig.from_env(env, image_file=other).image_file == other
    assert EmulatorConfig.from_env(env, image_file="").image_file is None  # given, and empty: no file


def test_argparse_values_pass_straight_through() -> None:
    """What the command line passes: a comma-separated string for the words, None for flags not given."""
    env = {"BEDROCK_EMULATOR_RPM": "1", "BEDROCK_EMULATOR_BLOCKED_WORDS": "gore", "BEDROCK_EMULATOR_SEED": "3"}
    config = EmulatorConfig.from_env(
        env, latency_ms=None, rpm=5, fault_rate=None, blocked_words="Blood Bath, gory", seed=None, image_file=None
    )
    assert config == EmulatorConfig(rpm=5, blocked_words=("blood bath", "gory"), seed=3)
    assert EmulatorConfig.from_env(env, blocked_words="").blocked_words == ()


def test_an_overridden_variable_is_not_read() -> None:
    env = {"BEDROCK_EMULATOR_LATENCY_MS": "soon", "BEDROCK_EMULATOR_SEED": "abc"}
    assert EmulatorConfig.from_env(env, latency_ms=10, seed=1) == EmulatorConfig(latency_ms=10, seed=1)
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_SEED"):
        EmulatorConfig.from_env(env, latency_ms=10)


def test_bad_overrides_name_the_field() -> None:
    with pytest.raises(ValueError, match="fault_rate"):
        EmulatorConfig.from_env({}, fault_rate=2.0)
    with pytest.raises(ValueError, match="rpm"):
        EmulatorConfig.from_env({"BEDROCK_EMULATOR_RPM": "3"}, rpm=-1)


# ---- to_env -----------------------------------------------------------------------------------


def _configs(png_file: Path) -> list[EmulatorConfig]:
    return [
        EmulatorConfig(),
        EmulatorConfig(latency_ms=250, rpm=60, fault_rate=0.1, blocked_words=("gore", "blood bath"), seed=7),
        EmulatorConfig(seed=0, fault_rate=1, image_file=png_file),
        EmulatorConfig(fault_rate=1 / 3, seed=-5, latency_ms=3_600_000, rpm=1_000_000),
        EmulatorConfig(lifecycle=OVERRIDES),
        EmulatorConfig(rpm=3, lifecycle=parse_overrides(f"{TITAN}=LEGACY@us-west-2+eu-west-1", name="test")),
    ]


def test_to_env_round_trips(png_file: Path) -> None:
    for config in _configs(png_file):
        assert EmulatorConfig.from_env(config.to_env()) == config


def test_to_env_sets_every_variable_and_replaces_an_inherited_environment(png_file: Path) -> None:
    inherited = EmulatorConfig(
        latency_ms=5, rpm=1, fault_rate=0.5, blocked_words=("x",), seed=9, image_file=png_file, lifecycle=INHERITED
    )
    assert set(inherited.to_env()) == set(ENV_VARS.values())
    assert set(ENV_VARS) == {field.name for field in dataclasses.fields(EmulatorConfig)}
    for config in _configs(png_file):
        assert EmulatorConfig.from_env({**inherited.to_env(), **config.to_env()}) == config


def test_to_env_values_are_plain_strings(png_file: Path) -> None:
    config = EmulatorConfig(latency_ms=250, fault_rate=0.25, blocked_words=("gore", "violence"), image_file=png_file)
    assert config.to_env() == {
        "BEDROCK_EMULATOR_LATENCY_MS": "250",
        "BEDROCK_EMULATOR_RPM": "0",
        "BEDROCK_EMULATOR_FAULT_RATE": "0.25",
        "BEDROCK_EMULATOR_BLOCKED_WORDS": "gore,violence",
        "BEDROCK_EMULATOR_SEED": "",
        "BEDROCK_EMULATOR_IMAGE_FILE": str(png_file),
        "BEDROCK_EMULATOR_LIFECYCLE": "",
        "BEDROCK_EMULATOR_AGREEMENTS": "all",
    }


# ---- image_file -------------------------------------------------------------------------------


def test_image_file_is_made_absolute(png_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(png_file.parent)
    config = EmulatorConfig(image_file=Path(png_file.name))
    assert config.image_file == png_file
    assert config.image_file is not None
    assert config.image_file.is_absolute()


def _unusable(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        return tmp_path
    path = tmp_path / f"{kind}.png"
    if kind != "missing":
        path.write_bytes(b"GIF89a" if kind == "not-png" else b"")
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("missing", "cannot read"), ("directory", "cannot read"), ("not-png", "is not a PNG"), ("empty", "is not a PNG")],
)
def test_an_unusable_image_file_is_a_value_error_naming_the_variable(tmp_path: Path, kind: str, problem: str) -> None:
    path = _unusable(tmp_path, kind)
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_IMAGE_FILE") as caught:
        EmulatorConfig.from_env({"BEDROCK_EMULATOR_IMAGE_FILE": str(path)})
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_IMAGE_FILE"):
        EmulatorConfig.from_env({}, image_file=path)
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_IMAGE_FILE"):
        EmulatorConfig(image_file=path)
