"""Emulators for the tests in this directory: one shared by the tests that only read from it, and dedicated
ones started on demand. Both make every model the tests invoke ACTIVE in every region
(``tests.emulator_bodies.EVERY_MODEL_ACTIVE``) unless a test asks for the lifecycle table as it is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.server import BedrockEmulator
from tests.emulator_bodies import every_model_active
from tests.local.emulator.client import StartEmulator, make_client

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[BedrockEmulator]:
    """One default emulator for the tests that only read from it (validation, rendering)."""
    with BedrockEmulator(every_model_active()) as emulator:
        yield emulator


_shared_clients: dict[str, BedrockRuntimeClient] = {}


@pytest.fixture
def client(shared_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch) -> BedrockRuntimeClient:
    """A client of the shared emulator, made once (from the environment, like the service does) and reused."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", shared_emulator.url)
    if shared_emulator.url not in _shared_clients:
        _shared_clients[shared_emulator.url] = make_client()
    return _shared_clients[shared_emulator.url]


@pytest.fixture
def start_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartEmulator]:
    """Starts a dedicated emulator and points ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` and ``AWS_ENDPOINT_URL_BEDROCK``
    at it. A config without lifecycle overrides gets ``EVERY_MODEL_ACTIVE``, unless ``table=True`` (the lifecycle
    table as it is, with the config's overrides if any)."""
    started: list[BedrockEmulator] = []

    def start(
        config: EmulatorConfig | None = None, clock: Callable[[], float] = time.monotonic, *, table: bool = False
    ) -> BedrockEmulator:
        config = config or EmulatorConfig()
        if not table and not config.lifecycle:
            config = every_model_active(config)
        emulator = BedrockEmulator(config, clock=clock).start()
        started.append(emulator)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", emulator.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", emulator.url)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
