"""Dead letters that fit the dead-letter queue: SQS counts a message's attributes against the queue's
MaximumMessageSize as well as its body, so a body near the limit does not fit beside its reason. Such a body is
stored in S3 and the letter carries the SQS Extended Client's pointer to it instead (docs/api.md, "Queue messages").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from imagegen.storage import QUEUE_FOLDER, ImageStore, images_folder

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

logger = logging.getLogger(__name__)

#: The SQS Extended Client's pointer to a body stored in S3 (``[class, {"s3BucketName": …, "s3Key": …}]``, as
#: payload-offloading-java-common-lib's ``PayloadS3Pointer.toJson`` writes it) and the attribute that marks a message
#: as one (the original body's size in bytes; ``SQSExtendedClientConstants.RESERVED_ATTRIBUTE_NAME`` in
#: awslabs/amazon-sqs-java-extended-client-lib, ``RESERVED_ATTRIBUTE_NAME`` in amazon-sqs-python-extended-client-lib).
PAYLOAD_POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
PAYLOAD_SIZE_ATTRIBUTE = "ExtendedPayloadSize"
#: Sub-folder of the queue worker's folder for the bodies of dead letters too large for the DLQ.
DEAD_LETTER_BODIES = "dead-letter-bodies"


def dead_letter_body_key(key_prefix: str, job_id: str) -> str:
    """``{key_prefix}/generated_images/from_queue/dead-letter-bodies/{job_id}``: in the worker's own folder, with no
    ``.png`` (the API may read only PNGs) nor ``.json`` (``imagegen reindex`` reads those as sidecars)."""
    return f"{images_folder(key_prefix, QUEUE_FOLDER)}{DEAD_LETTER_BODIES}/{job_id}"


def message_size(body: str, attributes: Mapping[str, MessageAttributeValueTypeDef]) -> int:
    """The size SQS holds against a queue's MaximumMessageSize: the body's UTF-8 bytes plus, for each message
    attribute, the UTF-8 bytes of its name, of its data type and of its value (a Binary value's own bytes). AWS: "All
    parts of the message attribute, including Name, Type, and Value, are part of the message size restriction"
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html); the SQS
    Extended Client counts the same (``getMsgAttributesSize``). An unpaired surrogate, which SQS stores as U+FFFD,
    counts as its 3 bytes."""
    size = _utf8_size(body)
    for name, value in attributes.items():
        size += _utf8_size(name) + _utf8_size(value["DataType"])
        if "StringValue" in value:
            size += _utf8_size(value["StringValue"])
        binary = value.get("BinaryValue")
        if isinstance(binary, bytes | bytearray):
            size += len(binary)
        elif isinstance(binary, str):  # botocore sends a str blob as its UTF-8 bytes
            size += _utf8_size(binary)
    return size


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _utf8(text: str) -> bytes:
    """``text`` in UTF-8, an unpaired surrogate (not encodable) as U+FFFD, as SQS would store it. (No regex: compiling
    one costs the worker's cold start.)"""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text).encode("utf-8")


def _shortened(value: str, excess: int) -> str:
    """``value`` at least ``excess`` UTF-8 bytes shorter, ending in "…" (3 bytes) to say it was cut."""
    data = value.encode("utf-8", "surrogatepass")
    keep = len(data) - excess - len("…".encode())
    return data[: max(keep, 0)].decode("utf-8", "ignore") + "…"


def fit_dead_letter(
    body: str,
    attributes: dict[str, MessageAttributeValueTypeDef],
    *,
    job_id: str,
    store: ImageStore,
    limit: int,
    text: Callable[[str], MessageAttributeValueTypeDef],
) -> tuple[str, dict[str, MessageAttributeValueTypeDef]]:
    """The dead letter as the DLQ takes it: body and attributes within ``limit`` bytes, counted as SQS counts
    (``message_size``). Checked before sending, so SQS never refuses the reason for its size.

    A body that does not fit beside its reason is stored in S3 (``dead_letter_body_key``: one object per job, which a
    resend overwrites) and the letter carries the SQS Extended Client's pointer to it instead, with the
    ``ExtendedPayloadSize`` attribute, so the Extended Client libraries read it as the original body. Should even that
    not fit (a DLQ limit near SQS's minimum of 1 KiB), the free-text reasons are shortened (ending in "…", made an
    attribute by ``text``). A failed S3 write raises ``StorageError``: the message is retried, as a failed send is."""
    size = message_size(body, attributes)
    if size <= limit:
        return body, attributes
    key = dead_letter_body_key(store.key_prefix, job_id)
    data = _utf8(body)
    pointer = json.dumps([PAYLOAD_POINTER_CLASS, {"s3BucketName": store.bucket, "s3Key": key}], separators=(",", ":"))
    with_pointer: dict[str, MessageAttributeValueTypeDef] = {
        **attributes,
        PAYLOAD_SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(len(data))},
    }
    if message_size(pointer, with_pointer) < size:  # else the reason, not the body, is what is too large
        store.put(key, data, "text/plain; charset=utf-8")
        logger.info("dead letter of %s: its body (%d bytes) is in s3://%s/%s", job_id, len(data), store.bucket, key)
        body, attributes = pointer, with_pointer
    for name in ("error_detail", "error_message"):
        excess = message_size(body, attributes) - limit
        if excess > 0:
            attributes[name] = text(_shortened(attributes[name].get("StringValue", ""), excess))
    if message_size(body, attributes) > limit:
        logger.warning("dead letter of %s exceeds the DLQ's %d bytes even shortened", job_id, limit)
    return body, attributes
