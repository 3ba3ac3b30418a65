"""API Lambda behind API Gateway (REST, proxy integration): ``POST /generate-image``, ``POST /jobs``,
``GET /jobs/{job_id}``, ``GET /images`` and the page (``GET /``).

A thin adapter: HTTP in, ``imagegen.ImageService`` and ``imagegen.jobs_service.JobService`` do the work, HTTP out.
Errors map to statuses: invalid input and content-filter blocks 400, an unknown job 404, an Idempotency-Key reused
with another body 422, throttling 429 (with ``Retry-After``), no usable model in the chain 503, a failed model
inference 503 (with ``Retry-After``), model timeout 504,
other upstream failures 502, anything unexpected 500 with the request id and no internals.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from imagegen.emf import EmfMetrics
from imagegen.errors import (
    ContentFilteredError,
    IdempotencyKeyMismatchError,
    ImageGenError,
    InvalidRequestError,
    JobNotFoundError,
    ModelInferenceError,
    ModelTimeoutError,
    NoModelAvailableError,
    ThrottledError,
)
from imagegen.index import make_dynamodb_client
from imagegen.request import parse_json_body
from imagegen.service import ImageService

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.exceptions import NotFoundError
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs import SQSClient

    from imagegen.jobs import JobStore
    from imagegen.jobs_service import JobService

#: The response's JSON media type (Powertools' ``content_types.APPLICATION_JSON``).
APPLICATION_JSON = "application/json"

logger = Logger(service="imagegen-api")
metrics = Metrics(namespace="ImageGen", service="imagegen-api")
emf = EmfMetrics(metrics.namespace)  # the core's counts and Bedrock latencies, each with its own dimensions
copy_config_to_registered_loggers(source_logger=logger, include={"imagegen"})  # the core's warnings, as JSON


@functools.cache
def service() -> ImageService:
    """One service (and so one Bedrock client per region and one S3 client) per container."""
    return ImageService.from_env(count=emf.count, record_latency=emf.bedrock_latency)


def jobs() -> JobService:
    """The job records and the prompt queue, over this container's service.

    The jobs modules (and the queue's, with its dead-letter code) are imported here, on the first request, not at
    init, like Powertools' router (see ``router``).
    """
    from imagegen.jobs_service import JobService

    return JobService(service(), *_job_clients())


@functools.cache
def _job_clients() -> tuple[JobStore | None, SQSClient | None, str]:
    """One DynamoDB and one SQS client per container (none when the table or the queue is not configured)."""
    from imagegen.jobs import JobStore
    from imagegen.queue import make_sqs_client

    settings = service().settings
    store = JobStore(make_dynamodb_client(), settings.jobs_table_name) if settings.jobs_table_name else None
    sqs = make_sqs_client() if settings.prompt_queue_url else None
    return store, sqs, settings.prompt_queue_url


def reset() -> None:
    """Forget the per-container service, as a new container would (local stack, benchmarks)."""
    _job_clients.cache_clear()
    service.cache_clear()


_router_lock = threading.Lock()


def router() -> APIGatewayRestResolver:
    """Powertools' REST resolver with this module's routes and error handlers: one per container, made on the
    first request (under a lock: the local stack runs concurrent invocations in one process).

    Not at import: Powertools' ``event_handler`` package imports every resolver it has (AppSync's brings in
    ``asyncio``) and every event data class, which the init phase would pay before the first request could.
    """
    with _router_lock:
        return _make_router()


@functools.cache
def _make_router() -> APIGatewayRestResolver:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    app = APIGatewayRestResolver()
    app.post("/generate-image")(generate_image)
    app.post("/jobs")(create_job)
    app.get("/jobs/<job_id>")(get_job)
    app.get("/")(page)
    app.get("/images")(images)
    # Registered by call: Powertools' decorator is untyped. Most specific first is not required (MRO lookup).
    app.exception_handler(InvalidRequestError)(invalid_request)
    app.exception_handler(ImageGenError)(generation_failed)
    app.not_found(not_found)
    app.exception_handler(Exception)(unexpected)
    return app


def _request_id() -> str:
    app = router()
    return app.current_event.request_context.request_id or app.lambda_context.aws_request_id


def _owner() -> str:
    """Who sent the request: the API key's id (API Gateway sets it for keyed routes)."""
    return router().current_event.request_context.identity.api_key_id or "anonymous"


def generate_image() -> dict[str, Any]:
    """Generate now (within API Gateway's 29 s), recorded as a job whose id is the request id once it ends."""
    from imagegen.jobs import body_digest, canonical_body

    payload = parse_json_body(_raw_body())
    prepared = service().prepare(payload)
    result = jobs().run(
        prepared,
        request_id=_request_id(),
        owner=_owner(),
        request_sha256=body_digest(canonical_body(payload)),
    )
    metrics.add_dimension(name="model", value=result.model_id)
    metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=len(result.images))
    if result.failures:
        metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=len(result.failures))
    logger.info("images stored", extra={"keys": [image.key for image in result.images], "model": result.model_id,
                                        "failed": [failure.to_dict() for failure in result.failures]})  # fmt: skip
    return result.to_dict()


def create_job() -> Response[str]:
    """Validate and queue a job; 202 with its id and where to follow it."""
    from imagegen.jobs import parse_idempotency_key

    key = parse_idempotency_key(router().current_event.headers.get("Idempotency-Key"))  # headers: case-insensitive
    submitted = jobs().submit(parse_json_body(_raw_body()), owner=_owner(), idempotency_key=key)
    job_id = submitted.job.job_id
    if submitted.created:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    logger.info("job submitted", extra={"job_id": job_id, "new_job": submitted.created})
    url = _status_url(job_id)
    body = {"job_id": job_id, "status": submitted.job.status.value, "status_url": url}
    from aws_lambda_powertools.event_handler import Response

    return Response(status_code=HTTPStatus.ACCEPTED.value, content_type=APPLICATION_JSON,
                    body=json.dumps(body), headers={"Location": url})  # fmt: skip


def get_job(job_id: str) -> dict[str, Any]:
    from imagegen.jobs import parse_job_id

    return jobs().view(parse_job_id(job_id))


def _status_url(job_id: str) -> str:
    """``GET /jobs/{job_id}`` on the host and stage this request came to."""
    event = router().current_event
    host = event.request_context.domain_name or event.headers.get("Host") or "localhost"
    scheme = event.headers.get("X-Forwarded-Proto") or "https"
    return f"{scheme}://{host}/{event.request_context.stage}/jobs/{job_id}"


def page() -> Response[str]:
    """The page: public (everything it fetches needs the key). Its code is imported only here."""
    from aws_lambda_powertools.event_handler import Response

    from generate_image.page import render

    html, headers = render(service().store.url_origin())
    return Response(status_code=HTTPStatus.OK.value, content_type="text/html; charset=utf-8", body=html,
                    headers=headers)  # fmt: skip


def images() -> dict[str, Any]:
    """A page of the gallery, newest first (``limit`` 1-100, default 24; ``cursor`` from the previous page)."""
    from generate_image.gallery import list_images

    query = router().current_event.query_string_parameters or {}
    return list_images(service(), query.get("limit"), query.get("cursor"))


def _raw_body() -> str | bytes | None:
    """The body as sent: bytes when API Gateway base64-encoded it (the core decodes and checks it)."""
    event = router().current_event
    if not event.is_base64_encoded or event.body is None:
        return event.body
    try:
        return base64.b64decode(event.body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("body", "must be valid base64 when isBase64Encoded is set") from None


def _error(status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    from aws_lambda_powertools.event_handler import Response

    return Response(
        status_code=status.value,
        content_type=APPLICATION_JSON,
        body=json.dumps({**body, "request_id": _request_id()}),
        headers={"X-Content-Type-Options": "nosniff", **(headers or {})},
    )


def invalid_request(error: InvalidRequestError) -> Response[str]:
    metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
    logger.info("invalid request", extra={"field": error.field, "rule": error.rule})
    return _error(HTTPStatus.BAD_REQUEST, {"message": str(error), "field": error.field, "code": error.code})


def generation_failed(error: ImageGenError) -> Response[str]:
    metrics.add_metric(name=f"Failed{error.code}", unit=MetricUnit.Count, value=1)
    logger.warning("request failed", extra={"code": error.code, "detail": error.detail})
    body: dict[str, Any] = {"message": error.public_message, "code": error.code}
    headers = None
    if isinstance(error, ContentFilteredError):
        status = HTTPStatus.BAD_REQUEST
        body["field"] = "prompt"
    elif isinstance(error, ThrottledError):
        status = HTTPStatus.TOO_MANY_REQUESTS
        headers = {"Retry-After": str(error.retry_after_seconds)}
    elif isinstance(error, ModelInferenceError):
        status = HTTPStatus.SERVICE_UNAVAILABLE
        headers = {"Retry-After": str(error.retry_after_seconds)}
    elif isinstance(error, JobNotFoundError):
        status = HTTPStatus.NOT_FOUND
    elif isinstance(error, IdempotencyKeyMismatchError):
        status = HTTPStatus.UNPROCESSABLE_ENTITY
        body["field"] = "Idempotency-Key"
    elif isinstance(error, NoModelAvailableError):
        status = HTTPStatus.SERVICE_UNAVAILABLE
    elif isinstance(error, ModelTimeoutError):
        status = HTTPStatus.GATEWAY_TIMEOUT
    elif error.code == "ConfigurationError":
        status = HTTPStatus.INTERNAL_SERVER_ERROR
    else:
        status = HTTPStatus.BAD_GATEWAY
    return _error(status, body, headers)


def not_found(error: NotFoundError) -> Response[str]:
    message = "Not found: use POST /generate-image, POST /jobs, GET /jobs/{job_id}, GET /images or GET /."
    return _error(HTTPStatus.NOT_FOUND, {"message": message, "code": "NotFound"})


def unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal error.", "code": "InternalError"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = router().resolve(event, context)
    response.setdefault("multiValueHeaders", {}).setdefault("X-Content-Type-Options", ["nosniff"])
    return response
