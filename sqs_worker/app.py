"""Queue Lambda: SQS event source with ``ReportBatchItemFailures``.

A thin adapter around ``imagegen.queue.QueueWorker``: Powertools' async batch processor runs the records
of a batch concurrently (bounded by ``WORKER_CONCURRENCY``) and reports only the transient failures back
to SQS; permanent failures were already moved to the dead-letter queue with their reason.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from imagegen.config import Settings
from imagegen.emf import EmfMetrics
from imagegen.errors import ConfigurationError
from imagegen.index import make_dynamodb_client
from imagegen.jobs import JobStore
from imagegen.queue import JOB_ID_ATTRIBUTE, Outcome, QueueMessage, QueueWorker, make_sqs_client
from imagegen.service import ImageService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="imagegen-worker")
metrics = Metrics(namespace="ImageGen", service="imagegen-worker")
emf = EmfMetrics(metrics.namespace)  # the core's counts, Bedrock latencies, images by model: own dimensions
copy_config_to_registered_loggers(source_logger=logger, include={"imagegen"})  # the core's warnings, as JSON

_OUTCOME_METRICS = {
    Outcome.GENERATED: "ImagesGenerated",
    Outcome.ALREADY_DONE: "DuplicateDeliveriesSkipped",
    Outcome.DEAD_LETTERED: "MessagesDeadLettered",
}


_worker_lock = threading.Lock()


def worker() -> QueueWorker:
    """One worker (and so one set of AWS clients, and one view of the model chain) per container. Built under a
    lock: the local stack runs concurrent invocations in one process, which must share it as a container would."""
    with _worker_lock:
        return _make_worker()


@functools.cache
def _make_worker() -> QueueWorker:
    settings = Settings.from_env()
    for name, value in (("DEAD_LETTER_QUEUE_URL", settings.dead_letter_queue_url),
                        ("JOBS_TABLE_NAME", settings.jobs_table_name)):  # fmt: skip
        if not value:
            raise ConfigurationError("The worker is misconfigured.", detail=f"{name} is required")
    return QueueWorker(
        ImageService(settings, count=emf.count, record_latency=emf.bedrock_latency),
        JobStore(make_dynamodb_client(), settings.jobs_table_name),
        make_sqs_client(),
        settings.dead_letter_queue_url,
        retry_base_seconds=settings.retry_base_seconds,
        max_receive_count=settings.max_receive_count,
        claim_ttl_seconds=settings.claim_ttl_seconds,
    )


@functools.cache
def _executor() -> ThreadPoolExecutor:
    """The threads that run records; its size is the bound on concurrent Bedrock calls."""
    return ThreadPoolExecutor(max_workers=worker().service.settings.worker_concurrency, thread_name_prefix="record")


def reset() -> None:
    """Forget the per-container worker, clients and threads, as a new container would (local stack, benchmarks).

    Settings are read again on the next invocation (e.g. a new ``WORKER_CONCURRENCY``).
    """
    if _executor.cache_info().currsize:
        _executor().shutdown(wait=False)
    _executor.cache_clear()
    _make_worker.cache_clear()


#: Kept back from the function's remaining time when a delivery waits for another one (see QueueWorker).
WAIT_MARGIN_SECONDS = 5.0


def process_record(record: SQSRecord, deadline: float | None = None) -> Outcome:
    job_id = record.message_attributes[JOB_ID_ATTRIBUTE]
    sent = record.attributes.get("SentTimestamp")  # absent from hand-made events
    message = QueueMessage(
        message_id=record.message_id,
        body=record.body,
        receipt_handle=record.receipt_handle,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        source_queue_arn=record.event_source_arn,
        job_id=(job_id.string_value or "") if job_id is not None else "",
        sent_at=int(sent) / 1000 if sent and str(sent).isdigit() else None,
    )
    try:
        result = worker().process(message, deadline=deadline)
    except Exception:
        logger.warning(
            "message will be retried",
            exc_info=True,
            extra={"message_id": message.message_id, "receive_count": message.receive_count},
        )
        raise
    details: dict[str, Any] = {"outcome": result.outcome.value, "job_id": result.job_id}
    if result.generation:
        details["keys"] = [image.key for image in result.generation.images]
        details["model"] = result.generation.model_id
        details["failed"] = [failure.to_dict() for failure in result.generation.failures]
    if result.error:
        details.update(error_code=result.error.code, error_detail=result.error.detail)
    logger.info("message handled", extra={"message_id": message.message_id, **details})
    if result.outcome is Outcome.GENERATED and result.generation:  # by serving model: records may differ
        emf.emit("ImagesGenerated", MetricUnit.Count, len(result.generation.images),
                 {"model": result.generation.model_id})  # fmt: skip
    else:
        metrics.add_metric(name=_OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    return result.outcome


async def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> Outcome:
    import asyncio

    deadline = time.time() + lambda_context.get_remaining_time_in_millis() / 1000 - WAIT_MARGIN_SECONDS
    return await asyncio.get_running_loop().run_in_executor(_executor(), process_record, record, deadline)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on the first invocation, not at init: Powertools' batch utility imports every processor and event
    # data class it has, and asyncio; the cold start's init phase would pay them before the first record could.
    from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response

    # One processor per invocation: it keeps the batch's records and results on the instance. Lambda runs one
    # invocation at a time per container, but the local stack runs concurrent invocations in one process.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(async_process_partial_response(event, record_handler, processor, context))
