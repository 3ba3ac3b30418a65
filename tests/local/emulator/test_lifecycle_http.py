"""The lifecycle over real HTTP, as unmodified boto3 clients see it: InvokeModel's answer for each state and for a
region read from the SigV4 credential scope, Stability's filtered reply, the control plane (``bedrock`` client)
for each state, and the image service failing over along its default chain.

The decisions themselves are tested without sockets in tests/unit/emulator/test_lifecycle.py and test_control.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from bedrock_emulator.backend import PROMPT_FILTERED
from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.errors import (
    END_OF_LIFE_MESSAGE,
    INVALID_MODEL_MESSAGE,
    LEGACY_INACTIVE_MESSAGE,
    NO_ACCESS_MESSAGE,
)
from imagegen.bedrock import classify_client_error
from imagegen.config import DEFAULT_MODEL_ID, Settings
from imagegen.errors import ModelAccessDeniedError, ModelNotFoundError, NoModelAvailableError
from imagegen.service import ImageService
from tests.conftest import BUCKET
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, ULTRA, nova, raw, stability
from tests.local.emulator.client import StartEmulator, error_code, invoke, invoke_error

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

_ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


def runtime(region: str) -> BedrockRuntimeClient:
    """A client of the emulator (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``) signing for ``region``."""
    return boto3.client("bedrock-runtime", region_name=region, config=_ONE_ATTEMPT)


def control(url: str, region: str) -> BedrockClient:
    """An unmodified control-plane client of the emulator at ``url``, signing for ``region``."""
    return boto3.client("bedrock", endpoint_url=url, region_name=region, config=_ONE_ATTEMPT)


def lifecycle(overrides: str) -> EmulatorConfig:
    return EmulatorConfig.from_env({}, lifecycle=overrides)


def status_and_type(error: ClientError) -> tuple[int, str]:
    metadata = error.response["ResponseMetadata"]
    return metadata["HTTPStatusCode"], metadata["HTTPHeaders"]["x-amzn-errortype"].split(":", 1)[0]


# ---- InvokeModel ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "region", "status", "code", "message", "error_type", "reason"),
    [
        (f"{CORE}=EOL", "us-west-2", 404, "ResourceNotFoundException", END_OF_LIFE_MESSAGE, ModelNotFoundError,
         "end of life"),
        (f"{CORE}=LEGACY_INACTIVE", "us-west-2", 404, "ResourceNotFoundException", LEGACY_INACTIVE_MESSAGE,
         ModelNotFoundError, "Legacy, not used by this account recently"),
        (f"{CORE}=NO_ACCESS", "us-west-2", 403, "AccessDeniedException", NO_ACCESS_MESSAGE, ModelAccessDeniedError,
         "access denied (model access not enabled in the account, or IAM)"),
        ("", "us-east-1", 400, "ValidationException", INVALID_MODEL_MESSAGE, ModelNotFoundError,
         "not offered in this region"),
    ],
    ids=["eol", "legacy-inactive", "no-access", "not-in-region"],
)  # fmt: skip
def test_invoke_model_answers_each_unusable_state_as_bedrock_does(
    start_emulator: StartEmulator,
    overrides: str,
    region: str,
    status: int,
    code: str,
    message: str,
    error_type: type[Exception],
    reason: str,
) -> None:
    emulator = start_emulator(lifecycle(overrides), table=True)
    error = invoke_error(runtime(region), CORE, stability("x", seed=1))
    assert (error_code(error), error.response["Error"]["Message"]) == (code, message)
    assert status_and_type(error) == (status, code)
    classified = classify_client_error(error)  # what the service's failover sees
    assert isinstance(classified, error_type)
    assert getattr(classified, "reason", None) == reason
    assert emulator.stats["unavailable"] == 1


@pytest.mark.parametrize("state", ["ACTIVE", "LEGACY"])
def test_active_and_legacy_models_are_invoked(start_emulator: StartEmulator, state: str) -> None:
    start_emulator(lifecycle(f"{NOVA}={state}"), table=True)
    assert len(invoke(runtime("us-east-1"), NOVA, nova(numberOfImages=2))["images"]) == 2
    assert len(invoke(runtime("eu-west-1"), f"eu.{NOVA}", nova())["images"]) == 1


def test_the_region_is_the_sigv4_credential_scopes(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(table=True)
    assert invoke(runtime("us-west-2"), CORE, stability())["images"]
    assert error_code(invoke_error(runtime("us-east-1"), CORE, stability())) == "ValidationException"

    def raw_call(authorization: str | None) -> int:
        request = urllib.request.Request(f"{emulator.url}/model/{CORE}/invoke", data=raw(stability()), method="POST")
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    scope = "AWS4-HMAC-SHA256 Credential=AKID/20261130/{}/bedrock/aws4_request, SignedHeaders=host, Signature=0"
    assert raw_call(scope.format("us-east-1")) == 400
    assert raw_call(scope.format("us-west-2")) == 200
    assert raw_call(None) == 200  # unsigned: the region is unknown and not checked
    assert emulator.stats["unavailable"] == 2


def test_a_blocked_prompt_to_a_stability_model_is_a_200_with_the_filter_reason(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(blocked_words=("gory",)), table=True)
    response = runtime("us-west-2").invoke_model(modelId=ULTRA, body=json.dumps(stability("a gory scene")))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert json.loads(response["body"].read()) == {"finish_reasons": [PROMPT_FILTERED]}
    assert emulator.stats["filtered"] == 1


# ---- the control plane ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "authorization"),
    [("ACTIVE", "ACTIVE", "AUTHORIZED"), ("LEGACY", "LEGACY", "AUTHORIZED"),
     ("LEGACY_INACTIVE", "LEGACY", "NOT_AUTHORIZED"), ("NO_ACCESS", "ACTIVE", "NOT_AUTHORIZED")],
)  # fmt: skip
def test_the_control_plane_reports_each_usable_or_refused_state(
    start_emulator: StartEmulator, state: str, status: str, authorization: str
) -> None:
    emulator = start_emulator(lifecycle(f"{SD35}={state}"), table=True)
    client = control(emulator.url, "us-west-2")
    model = client.get_foundation_model(modelIdentifier=SD35)["modelDetails"]
    assert (model["modelId"], model["providerName"], model["outputModalities"]) == (SD35, "Stability AI", ["IMAGE"])
    assert model["modelArn"] == f"arn:aws:bedrock:us-west-2::foundation-model/{SD35}"
    assert model["modelLifecycle"] == {"status": status}
    access = client.get_foundation_model_availability(modelId=SD35)
    assert access["authorizationStatus"] == authorization
    assert access["regionAvailability"] == "AVAILABLE"
    listed = [summary["modelId"] for summary in client.list_foundation_models()["modelSummaries"]]
    assert SD35 in listed


def test_the_control_plane_refuses_end_of_life_and_other_regions(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(lifecycle(f"{NOVA}=LEGACY"), table=True)
    east = control(emulator.url, "us-east-1")
    for call in (
        lambda: east.get_foundation_model(modelIdentifier=TITAN),
        lambda: east.get_foundation_model_availability(modelId=TITAN),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert status_and_type(caught.value) == (404, "ResourceNotFoundException")
        assert caught.value.response["Error"]["Message"] == END_OF_LIFE_MESSAGE
    with pytest.raises(ClientError) as caught:
        east.get_foundation_model(modelIdentifier=CORE)
    assert status_and_type(caught.value) == (400, "ValidationException")
    assert caught.value.response["Error"]["Message"] == INVALID_MODEL_MESSAGE
    assert east.get_foundation_model_availability(modelId=CORE)["regionAvailability"] == "NOT_AVAILABLE"
    legacy = east.get_foundation_model(modelIdentifier=NOVA)["modelDetails"]["modelLifecycle"]
    assert (legacy["status"], legacy["endOfLifeTime"].date().isoformat()) == ("LEGACY", "2026-09-30")


def test_list_foundation_models_by_region_and_modality(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(table=True)
    west, east = control(emulator.url, "us-west-2"), control(emulator.url, "us-east-1")
    summaries = west.list_foundation_models(byOutputModality="IMAGE")["modelSummaries"]
    assert [summary["modelId"] for summary in summaries] == [SD35, CORE, ULTRA]
    assert west.list_foundation_models(byOutputModality="TEXT")["modelSummaries"] == []
    assert east.list_foundation_models()["modelSummaries"] == []
    with pytest.raises(ClientError) as caught:
        west.list_foundation_models(byOutputModality="PICTURE")  # type: ignore[arg-type]
    assert status_and_type(caught.value) == (400, "ValidationException")


def test_a_presigned_list_takes_its_region_from_the_query(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(table=True)
    listed = {}
    for region in ("us-east-1", "us-west-2"):
        request = AWSRequest(method="GET", url=f"{emulator.url}/foundation-models?byOutputModality=IMAGE")
        SigV4QueryAuth(Credentials("AKID", "secret"), "bedrock", region).add_auth(request)
        assert request.url is not None
        with urllib.request.urlopen(request.url, timeout=10) as response:
            listed[region] = [summary["modelId"] for summary in json.loads(response.read())["modelSummaries"]]
    assert listed == {"us-east-1": [], "us-west-2": [SD35, CORE, ULTRA]}


def test_the_standard_endpoint_variable_reaches_the_control_plane(start_emulator: StartEmulator) -> None:
    start_emulator(table=True)  # sets AWS_ENDPOINT_URL_BEDROCK, as the models command is pointed at it
    client = boto3.client("bedrock", region_name="us-west-2", config=_ONE_ATTEMPT)
    assert client.get_foundation_model(modelIdentifier=CORE)["modelDetails"]["modelId"] == CORE


# ---- the image service's default chain --------------------------------------------------------


def service(s3: S3Client, model_id: str = DEFAULT_MODEL_ID) -> ImageService:
    return ImageService(Settings(bucket_name=BUCKET, model_id=model_id, bedrock_max_attempts=1), s3=s3)


def test_the_default_chain_fails_over_from_titan_to_stable_image_core(
    start_emulator: StartEmulator, s3: S3Client
) -> None:
    emulator = start_emulator(table=True)
    image_service = service(s3)
    prepared = image_service.prepare({"prompt": "a red fox", "seed": 4, "numberOfImages": 2})
    result = image_service.generate(prepared, request_id="req-chain-1")
    assert (result.model_id, result.region, len(result.images)) == (CORE, "us-west-2", 2)
    assert [image.seed for image in result.images] == [4, 5]
    assert emulator.stats["unavailable"] == 1  # Titan once; the chain remembers it for the cool-down
    image_service.generate(image_service.prepare({"prompt": "a blue fox"}), request_id="req-chain-2")
    assert emulator.stats["unavailable"] == 1


def test_a_chain_of_unusable_models_is_no_model_available(start_emulator: StartEmulator, s3: S3Client) -> None:
    start_emulator(lifecycle(f"{NOVA}=LEGACY_INACTIVE,{CORE}=NO_ACCESS"), table=True)
    chain = f"{TITAN}@us-east-1,{NOVA}@us-west-2,{CORE}@us-west-2,{SD35}@us-east-1"
    image_service = service(s3, chain)
    with pytest.raises(NoModelAvailableError):
        image_service.generate(image_service.prepare({"prompt": "a fox"}), request_id="req-chain-3")
