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
  # Applied from GitHub, the role carries the bootstrap's boundary (the apply role may create roles only with it):
  # whatever the policy below says, the worker can never do more than the boundary allows. null = none.
  permissions_boundary = var.permissions_boundary_arn == "" ? null : var.permissions_boundary_arn
}

# bedrock:InvokeModel on exactly the entries of the model chain (local.model_grants, parsed in main.tf), one statement
# each: a model's foundation-model ARN in the entry's region, or an inference profile's ARN ...
data "aws_iam_policy_document" "invoke_models" {
  dynamic "statement" {
    for_each = local.model_grants
    content {
      sid       = "InvokeModel${statement.key}"
      effect    = "Allow"
      actions   = ["bedrock:InvokeModel"]
      resources = [statement.value.is_profile ? statement.value.profile_arn : statement.value.model_arn]
    }
  }

  # ... and, for a profile, the foundation model behind it in whichever region the profile routes the request to,
  # only when the call goes through that profile: AWS's documented policy for cross-region inference. The "*" region
  # is the only wildcard of the Bedrock statements.
  dynamic "statement" {
    for_each = { for index, grant in local.model_grants : index => grant if grant.is_profile }
    content {
      sid       = "InvokeModel${statement.key}ThroughProfile"
      effect    = "Allow"
      actions   = ["bedrock:InvokeModel"]
      resources = [statement.value.routed_arn]

      condition {
        test     = "StringEquals"
        variable = "bedrock:InferenceProfileArn"
        values   = [statement.value.profile_arn]
      }
    }
  }
}

data "aws_iam_policy_document" "worker" {
  # The model chain's statements (above): a document of their own, which depends on nothing but the variables.
  source_policy_documents = [data.aws_iam_policy_document.invoke_models.json]

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

  # The worker stores each image and then its JSON sidecar, and the body of a dead letter too large for the DLQ
  # beside its reason (dead-letter-bodies/{job_id}, no .png: the API cannot read it). It reads (GetObject; HeadObject
  # needs the same permission) only its own sidecars, and only on a redelivery: to find images an earlier attempt
  # stored but could not record in the job record. Claims and endings live in the job record (JobsTable), not in S3.
  statement {
    sid       = "ReadWriteQueueImages"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}/${local.queue_images_folder}*"]
  }

  # Without ListBucket, S3 answers a GetObject of a missing key with 403 instead of 404. On a redelivery a missing
  # sidecar means "not stored yet", so the worker needs the 404. Scoped to the same folder through the s3:prefix
  # condition key.
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

  # The gallery's index: one item per image the worker stores. Writing only: the API pages it, not the worker.
  statement {
    sid       = "IndexQueueImages"
    effect    = "Allow"
    actions   = ["dynamodb:PutItem"]
    resources = ["arn:${local.partition}:dynamodb:${var.aws_region}:${local.account_id}:table/${var.images_table_name}"]
  }

  # The job records (the SAM stack's JobsTable): the worker claims, updates and ends a job's record with conditional
  # UpdateItem (which also creates the record of a message sent straight to the queue) and reads it with GetItem.
  # It never puts or deletes records: POST /jobs creates them, and TTL removes them.
  statement {
    sid       = "TrackQueueJobs"
    effect    = "Allow"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = ["arn:${local.partition}:dynamodb:${var.aws_region}:${local.account_id}:table/${var.jobs_table_name}"]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }

  # X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions, so "*" is
  # the only possible Resource (the same as the AWSXrayWriteOnlyAccess managed policy). This is the
  # only "*" Resource in the policy; S3, Bedrock, SQS, DynamoDB and Logs are all scoped to exact ARNs above.
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
