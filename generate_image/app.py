"""API Lambda: ``POST /generate-image`` behind API Gateway (REST, proxy integration).

A thin adapter: HTTP in, ``imagegen.ImageService`` does the work, HTTP out. Errors map to statuses:
invalid input and content-filter blocks 400, throttling 429 (with ``Retry-After``), no usable model in the
chain 503, model timeout 504, other upstream failures 502, anything unexpected 500 with the request id and
no internals.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from imagegen.errors import (
    ContentFilteredError,
    ImageGenError,
    InvalidRequestError,
    ModelTimeoutError,
    NoModelAvailableError,
    ThrottledError,
)
from imagegen.request import parse_json_body
from imagegen.service import ImageService

logger = Logger(service="imagegen-api")
tracer = Tracer(service="imagegen-api")
metrics = Metrics(namespace="ImageGen", service="imagegen-api")
app = APIGatewayRestResolver()
copy_config_to_registered_loggers(source_logger=logger, include={"imagegen"})  # the core's warnings, as JSON


def count(name: str, **dimensions: str) -> None:
    """What the core counts (a model marked unavailable, an index write that failed), as its own EMF metric."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)


@functools.cache
def service() -> ImageService:
    """One service (and so one Bedrock client per region and one S3 client) per container."""
    return ImageService.from_env(count=count)


def reset() -> None:
    """Forget the per-container service, as a new container would (local stack, benchmarks)."""
    service.cache_clear()


def _request_id() -> str:
    return app.current_event.request_context.request_id or app.lambda_context.aws_request_id


@app.post("/generate-image")
@tracer.capture_method
def generate_image() -> dict[str, Any]:
    payload = parse_json_body(_raw_body())
    prepared = service().prepare(payload)
    result = service().generate(prepared, request_id=_request_id(), source="api")
    metrics.add_dimension(name="model", value=result.model_id)
    metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=len(result.images))
    logger.info("images stored", extra={"keys": [image.key for image in result.images], "model": result.model_id})
    return result.to_dict()


@app.get("/")
def page() -> Response[str]:
    """The page: public (everything it fetches needs the key). Its code is imported only here."""
    from generate_image.page import render

    html, headers = render(service().store.url_origin())
    return Response(status_code=HTTPStatus.OK.value, content_type="text/html; charset=utf-8", body=html,
                    headers=headers)  # fmt: skip


@app.get("/images")
@tracer.capture_method
def images() -> dict[str, Any]:
    """A page of the gallery, newest first (``limit`` 1-100, default 24; ``cursor`` from the previous page)."""
    from generate_image.gallery import list_images

    query = app.current_event.query_string_parameters or {}
    return list_images(service(), query.get("limit"), query.get("cursor"))


def _raw_body() -> str | bytes | None:
    """The body as sent: bytes when API Gateway base64-encoded it (the core decodes and checks it)."""
    event = app.current_event
    if not event.is_base64_encoded or event.body is None:
        return event.body
    try:
        return base64.b64decode(event.body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("body", "must be valid base64 when isBase64Encoded is set") from None


def _error(status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({**body, "request_id": _request_id()}),
        headers={"X-Content-Type-Options": "nosniff", **(headers or {})},
    )


def invalid_request(error: InvalidRequestError) -> Response[str]:
    metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
    logger.info("invalid request", extra={"field": error.field, "rule": error.rule})
    return _error(HTTPStatus.BAD_REQUEST, {"message": str(error), "field": error.field, "code": error.code})


def generation_failed(error: ImageGenError) -> Response[str]:
    metrics.add_metric(name=f"Failed{error.code}", unit=MetricUnit.Count, value=1)
    logger.warning("generation failed", extra={"code": error.code, "detail": error.detail})
    body: dict[str, Any] = {"message": error.public_message, "code": error.code}
    headers = None
    if isinstance(error, ContentFilteredError):
        status = HTTPStatus.BAD_REQUEST
        body["field"] = "prompt"
    elif isinstance(error, ThrottledError):
        status = HTTPStatus.TOO_MANY_REQUESTS
        headers = {"Retry-After": str(error.retry_after_seconds)}
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
    message = "Not found: use POST /generate-image, GET /images or GET /."
    return _error(HTTPStatus.NOT_FOUND, {"message": message, "code": "NotFound"})


def unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal error.", "code": "InternalError"})


# Registered by call: Powertools' decorator is untyped. Most specific first is not required (MRO lookup).
app.exception_handler(InvalidRequestError)(invalid_request)
app.exception_handler(ImageGenError)(generation_failed)
app.not_found(not_found)
app.exception_handler(Exception)(unexpected)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    response.setdefault("multiValueHeaders", {}).setdefault("X-Content-Type-Options", ["nosniff"])
    return response
