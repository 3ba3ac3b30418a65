data "aws_partition" "current" {}

locals {
  queue_name    = "${var.name_prefix}-prompts"
  dlq_name      = "${var.name_prefix}-prompts-dlq"
  function_name = "${var.name_prefix}-queue-worker"

  # AWS's guidance for SQS event sources: at least six times the function timeout plus the batching window,
  # so Lambda has time to retry a batch whose invocation was throttled before the messages become visible.
  queue_visibility_timeout_seconds = 6 * var.worker_timeout_seconds + var.batching_window_seconds
  queue_retention_seconds          = 4 * 24 * 60 * 60  # 4 days
  dlq_retention_seconds            = 14 * 24 * 60 * 60 # 14 days, the SQS maximum

  # Object keys of queue-generated images: {key_prefix}/generated_images/from_queue/{message_id}-{i}.png|.json
  # (see imagegen/storage.py and imagegen/queue.py).
  object_key_base     = var.key_prefix == "" ? "" : "${var.key_prefix}/"
  queue_images_folder = "${local.object_key_base}generated_images/from_queue/"

  # A relative zip path is relative to this directory, not to the caller's working directory.
  worker_zip_path = startswith(var.worker_zip_path, "/") ? var.worker_zip_path : "${path.module}/${var.worker_zip_path}"

  # Only the partition is needed: every other ARN comes from a resource attribute.
  partition = data.aws_partition.current.partition
}
