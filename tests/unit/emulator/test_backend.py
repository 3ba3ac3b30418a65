"""The emulated Bedrock's state and behaviour, called directly: quota, faults, content filter, latency,
forced errors, stats and ``image_file``. No sockets; the HTTP mapping is in tests/local/emulator/test_server.py."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bedrock_emulator.backend import FAULT_CODES, PROMPT_FILTERED, STAT_NAMES, Backend
from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.errors import CONTENT_FILTER_MESSAGE, ERROR_STATUS, THROTTLING_MESSAGE, BedrockApiError
from bedrock_emulator.render import render_placeholder
from bedrock_emulator.server import BedrockEmulator
from imagegen.errors import ContentFilteredError
from imagegen.models import Invocation, adapter_for
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, ULTRA, every_model_active, nova, raw, stability, titan


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def invoke(backend: Backend, model_id: str, body: Any) -> dict[str, Any]:
    return backend.invoke(model_id, raw(body))


def invoke_error(backend: Backend, model_id: str, body: Any) -> BedrockApiError:
    with pytest.raises(BedrockApiError) as caught:
        invoke(backend, model_id, body)
    return caught.value


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "realistic.png"
    path.write_bytes(render_placeholder("a realistic-size image", 7, 64, 48))
    return path


# ---- content filter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        (TITAN, titan("A GORY scene")),
        (NOVA, nova("calm lake", text_params={"negativeText": "no gory parts"})),
    ],
)
def test_blocked_words_trip_the_content_filter(model_id: str, body: Any) -> None:
    backend = Backend(every_model_active(EmulatorConfig(blocked_words=("gory", " Blood Bath "))))
    error = invoke_error(backend, model_id, body)
    assert error.code == "ValidationException"
    assert error.status == 400
    assert error.message == CONTENT_FILTER_MESSAGE
    assert backend.stats["filtered"] == 1


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        (SD35, stability("a blood bath, oil painting", mode="text-to-image")),
        (CORE, stability("meadow", negative_prompt="Gory")),
        (ULTRA, stability("GORY", aspect_ratio="16:9", output_format="jpeg", seed=3)),
    ],
)
def test_a_stability_model_answers_a_blocked_prompt_with_its_documented_filtered_reply(
    model_id: str, body: Any
) -> None:
    backend = Backend(every_model_active(EmulatorConfig(blocked_words=("gory", " Blood Bath "), rpm=1)), FakeClock())
    assert invoke(backend, model_id, body) == {"finish_reasons": [PROMPT_FILTERED]}
    assert PROMPT_FILTERED == "Filter reason: prompt"
    assert backend.stats == {**dict.fromkeys(STAT_NAMES, 0), "requests": 1, "filtered": 1}
    assert invoke(backend, model_id, stability("calm"))["finish_reasons"] == [None]  # the quota was not used
    with pytest.raises(ContentFilteredError):  # what the service makes of it
        adapter_for(model_id).parse_response({"finish_reasons": [PROMPT_FILTERED]}, Invocation({}, 1, {}))


def test_blocked_words_match_whole_words_only() -> None:
    backend = Backend(every_model_active(EmulatorConfig(blocked_words=("gory",))))
    for prompt in ("allegory of spring", "gorylla", "categoryless"):
        assert invoke(backend, TITAN, titan(prompt))["images"]
    assert invoke_error(backend, TITAN, titan("gory!"))
    assert backend.stats["filtered"] == 1


def test_invalid_bodies_are_rejected_before_the_content_filter() -> None:
    backend = Backend(every_model_active(EmulatorConfig(blocked_words=("gory",))))
    error = invoke_error(backend, TITAN, titan("gory", numberOfImages=9))
    assert "numberOfImages" in error.message
    assert backend.stats["invalid"] == 1
    assert backend.stats["filtered"] == 0


# ---- quota, faults, latency -------------------------------------------------------------------


def test_requests_per_minute_quota_uses_a_sliding_window() -> None:
    clock = FakeClock()
    backend = Backend(every_model_active(EmulatorConfig(rpm=2)), clock=clock)
    invoke(backend, TITAN, titan())
    clock.now += 30
    invoke(backend, TITAN, titan())
    error = invoke_error(backend, TITAN, titan())
    assert error.code == "ThrottlingException"
    assert error.status == 429
    assert error.message == THROTTLING_MESSAGE

    clock.now += 29.9  # the first request is still inside the window
    assert invoke_error(backend, TITAN, titan()).code == "ThrottlingException"
    clock.now += 0.1  # 60 s after the first request: one slot frees up
    invoke(backend, TITAN, titan())
    assert invoke_error(backend, TITAN, titan()).code == "ThrottlingException"
    clock.now += 60
    invoke(backend, TITAN, titan())
    assert backend.stats["throttled"] == 3
    assert backend.stats["succeeded"] == 4


def test_invalid_and_filtered_requests_do_not_use_quota() -> None:
    backend = Backend(every_model_active(EmulatorConfig(rpm=1, blocked_words=("gory",))), clock=FakeClock())
    invoke_error(backend, TITAN, titan(seed=-1))
    invoke_error(backend, TITAN, titan("gory"))
    invoke(backend, TITAN, titan())
    assert invoke_error(backend, TITAN, titan()).code == "ThrottlingException"


def test_fault_rate_one_injects_both_fault_codes() -> None:
    backend = Backend(every_model_active(EmulatorConfig(fault_rate=1.0, seed=1)))
    seen: dict[str, int] = {}
    for _ in range(20):
        error = invoke_error(backend, TITAN, titan())
        assert error.status == ERROR_STATUS[error.code]
        seen[error.code] = seen.get(error.code, 0) + 1
    assert set(seen) == set(FAULT_CODES)
    assert backend.stats["faults"] == 20
    assert backend.stats["images"] == 0


def test_fault_rate_zero_never_faults() -> None:
    backend = Backend(every_model_active(EmulatorConfig(fault_rate=0.0, seed=1)))
    for _ in range(10):
        invoke(backend, TITAN, titan())
    assert backend.stats["faults"] == 0
    assert backend.stats["succeeded"] == 10


def test_faults_are_reproducible_with_a_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        backend = Backend(every_model_active(EmulatorConfig(fault_rate=0.5, seed=seed)))
        result = []
        for _ in range(16):
            try:
                invoke(backend, TITAN, titan())
                result.append("ok")
            except BedrockApiError as error:
                result.append(error.code)
        return result

    first = outcomes(1234)
    assert first == outcomes(1234)
    assert "ok" in first
    assert set(first) - {"ok"}
    assert first != outcomes(4321)


def test_latency_is_spent_on_successful_requests_only() -> None:
    waits: list[float] = []
    backend = Backend(
        every_model_active(EmulatorConfig(latency_ms=150, rpm=1, blocked_words=("gory",))), FakeClock(), waits.append
    )
    invoke_error(backend, TITAN, titan(seed=-1))
    invoke_error(backend, TITAN, titan("gory"))
    invoke(backend, TITAN, titan())
    invoke_error(backend, TITAN, titan())  # over quota
    assert waits == [0.15]


def test_no_latency_no_wait() -> None:
    waits: list[float] = []
    invoke(Backend(every_model_active(EmulatorConfig()), wait=waits.append), TITAN, titan())
    assert waits == []


# ---- forced errors and stats ------------------------------------------------------------------


def test_the_seven_documented_statuses() -> None:
    documented = {
        "ValidationException": 400,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ModelTimeoutException": 408,
        "ThrottlingException": 429,
        "InternalServerException": 500,
        "ServiceUnavailableException": 503,
    }
    assert documented.items() <= ERROR_STATUS.items()
    with pytest.raises(ValueError, match="unknown error code"):
        BedrockEmulator().fail_next("TeapotException")
    with pytest.raises(ValueError, match="unknown error code"):
        Backend().fail_next("TeapotException")


@pytest.mark.parametrize(("code", "status"), sorted(ERROR_STATUS.items()))
def test_forced_errors_come_before_any_check_and_only_as_often_as_asked(code: str, status: int) -> None:
    backend = Backend(every_model_active(EmulatorConfig(rpm=1)), clock=FakeClock())
    backend.fail_next(code, times=2, message=f"forced {code}")
    for _ in range(2):
        with pytest.raises(BedrockApiError) as caught:
            backend.invoke("not-a-model", b"not json")
        error = caught.value
        assert (error.code, error.status, error.message) == (code, status, f"forced {code}")
    assert invoke(backend, TITAN, titan())["images"]
    assert backend.stats["faults"] == 2
    assert backend.stats["invalid"] == 0


def test_a_forced_error_without_a_message_has_bedrocks_default() -> None:
    backend = Backend(every_model_active())
    backend.fail_next("AccessDeniedException")
    assert "access" in invoke_error(backend, TITAN, titan()).message


def test_stats_count_every_outcome_and_can_be_reset() -> None:
    backend = Backend(every_model_active(EmulatorConfig(rpm=2, blocked_words=("gory",))), clock=FakeClock())
    invoke(backend, TITAN, titan(numberOfImages=3))
    invoke(backend, SD35, stability())
    invoke_error(backend, TITAN, titan(quality="best"))
    invoke_error(backend, "x.y", titan())
    invoke_error(backend, TITAN, titan("gory"))
    invoke_error(backend, TITAN, titan())  # over quota
    backend.fail_next("AccessDeniedException")
    invoke_error(backend, TITAN, titan())
    assert backend.stats == {
        "requests": 7,
        "images": 4,
        "succeeded": 2,
        "throttled": 1,
        "faults": 1,
        "filtered": 1,
        "invalid": 2,
        "unavailable": 0,
        "agreement_requests": 0,
    }
    backend.reset_stats()
    assert backend.stats == dict.fromkeys(STAT_NAMES, 0)


def test_stats_are_a_snapshot() -> None:
    backend = Backend(every_model_active())
    snapshot = backend.stats
    invoke(backend, TITAN, titan())
    assert snapshot["requests"] == 0
    assert backend.stats["requests"] == 1


# ---- image_file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body", "count"),
    [(TITAN, titan(numberOfImages=3), 3), (NOVA, nova(), 1), (SD35, stability(seed=5, output_format="png"), 1)],
)
def test_image_file_replaces_every_rendered_image(png_file: Path, model_id: str, body: Any, count: int) -> None:
    backend = Backend(every_model_active(EmulatorConfig(image_file=png_file)))
    reply = invoke(backend, model_id, body)
    assert [base64.b64decode(image) for image in reply["images"]] == [png_file.read_bytes()] * count
    assert backend.stats["images"] == count
    if model_id == SD35:
        assert reply["seeds"] == [5]
    else:
        assert reply["error"] is None


def test_without_image_file_images_are_rendered(png_file: Path) -> None:
    reply = invoke(Backend(every_model_active()), TITAN, titan())
    (image,) = reply["images"]
    assert base64.b64decode(image) != png_file.read_bytes()
    assert Image.open(io.BytesIO(base64.b64decode(image))).size == (512, 512)


def test_image_file_is_read_once_when_the_backend_is_made(png_file: Path) -> None:
    expected = png_file.read_bytes()
    backend = Backend(every_model_active(EmulatorConfig(image_file=png_file)))
    png_file.unlink()
    assert base64.b64decode(invoke(backend, TITAN, titan())["images"][0]) == expected


def test_an_image_file_gone_before_the_backend_is_made_names_the_variable(png_file: Path) -> None:
    config = EmulatorConfig(image_file=png_file)
    png_file.unlink()
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_IMAGE_FILE"):
        Backend(config)
