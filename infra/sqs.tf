# Prompt queue -> worker Lambda. Messages that fail max_receive_count times (or that the worker
# dead-letters itself with a reason, see imagegen/queue.py) end up in the dead-letter queue.

resource "aws_sqs_queue" "prompts" {
  name                       = local.queue_name
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = local.queue_visibility_timeout_seconds
  message_retention_seconds  = local.queue_retention_seconds
  receive_wait_time_seconds  = 20

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = local.dlq_name
  sqs_managed_sse_enabled   = true
  message_retention_seconds = local.dlq_retention_seconds
  receive_wait_time_seconds = 20
}

# Only the prompt queue may use the DLQ as its dead-letter target.
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.prompts.arn]
  })
}

# Both queues refuse any request that is not made over TLS.
data "aws_iam_policy_document" "queue_tls_only" {
  for_each = {
    prompts     = aws_sqs_queue.prompts.arn
    dead_letter = aws_sqs_queue.dead_letter.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "prompts" {
  queue_url = aws_sqs_queue.prompts.id
  policy    = data.aws_iam_policy_document.queue_tls_only["prompts"].json
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.queue_tls_only["dead_letter"].json
}
