# The queue worker: sqs_worker.app.lambda_handler from build/sqs_worker.zip (`make package`).

resource "aws_cloudwatch_log_group" "worker" {
  # checkov:skip=CKV_AWS_158:The worker logs message ids, outcomes, object keys and error codes, never credentials or image data; CloudWatch Logs' default encryption at rest is sufficient and a CMK would add cost and key-policy coupling.
  # checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days, any CloudWatch value allowed); operational logs do not need to be kept for a year by default.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "worker" {
  # checkov:skip=CKV_AWS_117:The worker only calls public AWS endpoints (SQS, S3, Bedrock, X-Ray) and reaches no private resources; a VPC would add NAT/endpoint cost and cold-start latency for no isolation gain.
  # checkov:skip=CKV_AWS_116:SQS-triggered, not invoked asynchronously: a function-level DLQ never receives these events. Failed messages go to the queue's redrive DLQ (and permanent failures are dead-lettered by the worker).
  # checkov:skip=CKV_AWS_272:The zip is built reproducibly from this repository by `make package` and deployed by Terraform from the same pipeline; AWS Signer code signing is not set up for this project.
  # checkov:skip=CKV_AWS_173:Environment variables hold only non-secret configuration (bucket, prefix, model chain, queue URL, tuning); they are encrypted at rest with the AWS managed key.
  # checkov:skip=CKV_AWS_115:Concurrency is bounded by the event source mapping's scaling_config.maximum_concurrency (var.max_concurrency); reserved concurrency would additionally carve capacity out of the account pool and cause throttling of SQS batches.
  function_name = local.function_name
  description   = "Generates images for prompts from the ${local.queue_name} queue"
  role          = aws_iam_role.worker.arn

  filename         = local.worker_zip_path
  source_code_hash = fileexists(local.worker_zip_path) ? filebase64sha256(local.worker_zip_path) : null
  handler          = "sqs_worker.app.lambda_handler"
  runtime          = "python3.13"
  architectures    = ["arm64"]
  timeout          = var.worker_timeout_seconds
  memory_size      = var.worker_memory_mb

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = {
      BUCKET_NAME                  = var.bucket_name
      IMAGES_TABLE_NAME            = var.images_table_name
      JOBS_TABLE_NAME              = var.jobs_table_name
      KEY_PREFIX                   = var.key_prefix
      MODEL_ID                     = var.model_id
      BEDROCK_REGION               = var.bedrock_region
      MODEL_COOLDOWN_SECONDS       = tostring(var.model_cooldown_seconds)
      BEDROCK_READ_TIMEOUT_SECONDS = tostring(var.bedrock_read_timeout_seconds)
      DEAD_LETTER_QUEUE_URL        = aws_sqs_queue.dead_letter.url
      # The DLQ's own MaximumMessageSize: a dead letter whose body and reason (attributes count too) would exceed it
      # goes with its body in S3 (imagegen/queue.py), so SQS never refuses the reason for its size.
      DEAD_LETTER_MAX_MESSAGE_BYTES = tostring(aws_sqs_queue.dead_letter.max_message_size)
      WORKER_CONCURRENCY            = tostring(var.worker_concurrency)
      # On the last receive the redrive policy allows, the worker dead-letters transient failures itself,
      # with the reason, instead of leaving SQS to move them without one.
      MAX_RECEIVE_COUNT = tostring(var.max_receive_count)
      # A delivery's claim on a message outlives any invocation holding it.
      CLAIM_TTL_SECONDS            = tostring(var.worker_timeout_seconds)
      RETRY_BASE_SECONDS           = tostring(var.retry_base_seconds)
      POWERTOOLS_SERVICE_NAME      = "imagegen-worker"
      POWERTOOLS_METRICS_NAMESPACE = "ImageGen"
      POWERTOOLS_LOG_LEVEL         = var.log_level
    }
  }

  # The log group must exist (with its retention) before the first invocation creates it implicitly.
  depends_on = [aws_cloudwatch_log_group.worker, aws_iam_role_policy.worker]

  lifecycle {
    precondition {
      condition     = fileexists(local.worker_zip_path)
      error_message = "The worker package ${local.worker_zip_path} does not exist; build it with `make package` at the repository root."
    }
  }
}

resource "aws_lambda_event_source_mapping" "prompts" {
  event_source_arn                   = aws_sqs_queue.prompts.arn
  function_name                      = aws_lambda_function.worker.arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  # The worker reports only the records that should be retried (Powertools batch processor).
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }

  # AWS checks at creation that the role may receive from the queue.
  depends_on = [aws_iam_role_policy.worker]
}
