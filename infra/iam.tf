# Execution role of the queue worker: least privilege, exact ARNs (no AWS managed policies).

data "aws_iam_policy_document" "worker_assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name               = local.function_name
  description        = "Execution role of the ${local.function_name} Lambda (prompt queue -> Bedrock -> S3)"
  assume_role_policy = data.aws_iam_policy_document.worker_assume_role.json
}

data "aws_iam_policy_document" "worker" {
  # Lambda's event source mapping polls the queue with the function's role; the worker itself calls
  # ChangeMessageVisibility (retry backoff) and GetQueueUrl (to turn the record's queue ARN into a URL).
  statement {
    sid    = "ConsumePromptQueue"
    effect = "Allow"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.prompts.arn]
  }

  # Permanent failures are sent to the DLQ at once, with the reason as message attributes.
  statement {
    sid       = "DeadLetterPermanentFailures"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  statement {
    sid       = "ReadWriteQueueImages"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}/${local.queue_images_folder}*"]
  }

  # Without ListBucket, S3 answers a GetObject of a missing key with 403 instead of 404. The worker reads
  # the sidecar of each image to detect redeliveries of finished messages, so it needs the 404. Scoped to
  # the same folder through the s3:prefix condition key.
  statement {
    sid       = "ListQueueImages"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}"]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.queue_images_folder}*"]
    }
  }

  statement {
    sid       = "InvokeImageModel"
    effect    = "Allow"
    actions   = ["bedrock:InvokeModel"]
    resources = ["arn:${local.partition}:bedrock:${var.bedrock_region}::foundation-model/${var.model_id}"]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }

  # X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions, so "*" is
  # the only possible Resource (the same as the AWSXrayWriteOnlyAccess managed policy). This is the
  # only wildcard in the policy; S3, Bedrock, SQS and Logs are all scoped to exact ARNs above.
  statement {
    sid       = "WriteTraces"
    effect    = "Allow"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "${local.function_name}-least-privilege"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
