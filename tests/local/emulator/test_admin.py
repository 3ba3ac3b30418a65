"""The admin routes (``/_emulator/stats``, ``/reset``, ``/fail-next``) and ``EmulatorAdmin``, their client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from bedrock_emulator.admin import EmulatorAdmin
from bedrock_emulator.backend import STAT_NAMES
from bedrock_emulator.errors import (
    DEFAULT_MESSAGES,
)
from tests.emulator_bodies import TITAN, titan
from tests.local.emulator.client import StartEmulator, error_code, http, invoke, invoke_error, make_client

if TYPE_CHECKING:
    pass


# ---- admin routes and EmulatorAdmin -----------------------------------------------------------


def test_admin_endpoints_expose_stats_reset_and_forced_errors(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    client = make_client()
    invoke(client, TITAN, titan())
    status, _, stats = http(f"{emulator.url}/_emulator/stats")
    assert (status, stats["requests"], stats["succeeded"]) == (200, 1, 1)
    body = json.dumps({"code": "ResourceNotFoundException", "times": 2}).encode()
    assert http(f"{emulator.url}/_emulator/fail-next", "POST", body)[0] == 200
    assert error_code(invoke_error(client, TITAN, titan())) == "ResourceNotFoundException"
    assert error_code(invoke_error(client, TITAN, titan())) == "ResourceNotFoundException"
    invoke(client, TITAN, titan())
    assert http(f"{emulator.url}/_emulator/fail-next", "POST", b'{"code": "Nope"}')[0] == 400
    status, _, stats = http(f"{emulator.url}/_emulator/reset", "POST", b"")
    assert (status, stats["requests"]) == (200, 0)


def test_emulator_admin_reads_resets_and_forces_errors(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    admin = EmulatorAdmin(emulator.url + "/")
    client = make_client()
    invoke(client, TITAN, titan(numberOfImages=2))
    assert admin.stats() == emulator.stats
    assert admin.stats() == {**dict.fromkeys(STAT_NAMES, 0), "requests": 1, "images": 2, "succeeded": 1}

    admin.fail_next("ModelNotReadyException", times=2, message="warming up")
    for _ in range(2):
        error = invoke_error(client, TITAN, titan())
        assert (error_code(error), error.response["Error"]["Message"]) == ("ModelNotReadyException", "warming up")
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert invoke(client, TITAN, titan())["images"]
    admin.fail_next("AccessDeniedException")
    error = invoke_error(client, TITAN, titan())
    assert error.response["Error"]["Message"] == DEFAULT_MESSAGES["AccessDeniedException"]
    assert admin.stats()["faults"] == 3

    admin.reset_stats()
    assert admin.stats() == dict.fromkeys(STAT_NAMES, 0)
    assert emulator.stats == dict.fromkeys(STAT_NAMES, 0)


def test_emulator_admin_refuses_an_unknown_error_code(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    admin = EmulatorAdmin(emulator.url)
    with pytest.raises(ValueError, match="unknown error code 'TeapotException'"):
        admin.fail_next("TeapotException")
    assert invoke(make_client(), TITAN, titan())["images"]  # nothing was queued


def test_emulator_admin_ignores_http_proxies(start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = start_emulator()
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(urllib.error.URLError):  # what a plain urllib opener does with that environment
        urllib.request.build_opener().open(f"{emulator.url}/_emulator/stats", timeout=10)
    assert EmulatorAdmin(emulator.url).stats()["requests"] == 0


def test_emulator_admin_errors(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    with pytest.raises(RuntimeError, match="HTTP 404: Unknown operation"):
        EmulatorAdmin(emulator.url + "/elsewhere").stats()
    with pytest.raises(ValueError, match="http:// URL"):
        EmulatorAdmin("127.0.0.1:4567")
    url = emulator.url
    emulator.stop()
    with pytest.raises(OSError):
        EmulatorAdmin(url).reset_stats()
