# The lifecycle watch: model_watch.app.lambda_handler from build/model_watch.zip (`make package`), run on a schedule
# (EventBridge, var.model_watch_schedule). It asks Bedrock's control plane about every entry of var.model_id and
# publishes one message to the alarm topic when an entry needs the team (Legacy, end of life within
# var.model_watch_days, not offered in its region, no access or Marketplace agreement). Its own failures raise the
# model_watch_errors alarm of module.alarms, on the same topic.

locals {
  watch_function_name = "${var.name_prefix}-model-watch"
  # A relative zip path is relative to this directory, not to the caller's working directory.
  watch_zip_path = startswith(var.model_watch_zip_path, "/") ? var.model_watch_zip_path : "${path.module}/${var.model_watch_zip_path}"
  # A daily run asks the control plane two questions per entry (imagegen/model_status.py: two attempts, 5 s to
  # connect, 20 s to read each): two minutes leave room for a slow region; it needs no more memory than the minimum
  # with Powertools loaded.
  watch_timeout_seconds = 120
  watch_memory_mb       = 256

  # What the watch reads: each entry's foundation model (an inference profile's model behind it, as
  # imagegen/model_status.py asks for base_model_id) in the entry's region, and the regions it asks in.
  watch_model_arns = distinct([
    for entry in local.model_chain : "arn:${local.partition}:bedrock:${entry.region}::foundation-model/${entry.base_model_id}"
  ])
  watch_regions = distinct([for entry in local.model_chain : entry.region])
}

resource "aws_cloudwatch_log_group" "model_watch" {
  # checkov:skip=CKV_AWS_158:The watch logs model ids, lifecycle states and dates, never credentials or image data; CloudWatch Logs' default encryption at rest is sufficient and a CMK would add cost and key-policy coupling.
  # checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days, any CloudWatch value allowed); operational logs do not need to be kept for a year by default.
  name              = "/aws/lambda/${local.watch_function_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_iam_role" "model_watch" {
  name               = local.watch_function_name
  description        = "Execution role of the ${local.watch_function_name} Lambda (Bedrock control plane -> alarm topic)"
  assume_role_policy = data.aws_iam_policy_document.worker_assume_role.json # lambda.amazonaws.com only
  # The bootstrap's boundary, as on the worker's role (iam.tf). null = none.
  permissions_boundary = var.permissions_boundary_arn == "" ? null : var.permissions_boundary_arn
}

# Read-only Bedrock, one topic, its own logs: no model invocation, no agreement, no Marketplace action (those are the
# deploying roles', infra/bootstrap).
data "aws_iam_policy_document" "model_watch" {
  statement {
    sid       = "ReadModelLifecycle"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModel"]
    resources = local.watch_model_arns
  }

  # The Service Authorization Reference lists no resource type for GetFoundationModelAvailability (nor a Bedrock
  # condition key), so "*" is the only Resource that works; aws:RequestedRegion keeps it to the chain's regions.
  statement {
    sid       = "ReadModelAccessUnscopable"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModelAvailability"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = local.watch_regions
    }
  }

  statement {
    sid       = "PublishToAlertTopic"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [module.alarms.topic_arn]
  }

  # The topic is encrypted with the alert key (modules/alarms): a publisher needs the key's data key and decrypt,
  # here only through SNS and only for this topic (SNS's encryption context names the topic).
  statement {
    sid       = "EncryptForAlertTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.alarms.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [module.alarms.topic_arn]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.model_watch.arn}:*"]
  }

  # Active tracing: X-Ray's writes support no resource-level permissions (as for the worker, iam.tf).
  statement {
    sid       = "WriteTraces"
    effect    = "Allow"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "model_watch" {
  name   = "${local.watch_function_name}-least-privilege"
  role   = aws_iam_role.model_watch.id
  policy = data.aws_iam_policy_document.model_watch.json
}

resource "aws_lambda_function" "model_watch" {
  # checkov:skip=CKV_AWS_117:The watch only calls public AWS endpoints (Bedrock's control plane, SNS, X-Ray) and reaches no private resources; a VPC would add NAT/endpoint cost for no isolation gain.
  # checkov:skip=CKV_AWS_116:The schedule's event carries nothing worth keeping; a failed run is retried by Lambda and reported by the model_watch_errors alarm, and the next run checks again.
  # checkov:skip=CKV_AWS_272:The zip is built reproducibly from this repository by `make package` and deployed by Terraform from the same pipeline; AWS Signer code signing is not set up for this project.
  # checkov:skip=CKV_AWS_173:Environment variables hold only non-secret configuration (model chain, topic ARN, days); they are encrypted at rest with the AWS managed key.
  # checkov:skip=CKV_AWS_115:One scheduled invocation a day; reserved concurrency would carve capacity out of the account pool, and accounts with the default low limit cannot reserve any.
  function_name = local.watch_function_name
  description   = "Checks the model chain's Bedrock lifecycle, access and agreements; alerts the ${var.name_prefix}-alerts topic"
  role          = aws_iam_role.model_watch.arn

  filename         = local.watch_zip_path
  source_code_hash = fileexists(local.watch_zip_path) ? filebase64sha256(local.watch_zip_path) : null
  handler          = "model_watch.app.lambda_handler"
  runtime          = "python3.13"
  architectures    = ["arm64"]
  timeout          = local.watch_timeout_seconds
  memory_size      = local.watch_memory_mb

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = {
      MODEL_ID         = var.model_id
      BEDROCK_REGION   = var.bedrock_region
      ALERT_TOPIC_ARN  = module.alarms.topic_arn
      MODEL_WATCH_DAYS = tostring(var.model_watch_days)
    }
  }

  depends_on = [aws_cloudwatch_log_group.model_watch, aws_iam_role_policy.model_watch]

  lifecycle {
    precondition {
      condition     = fileexists(local.watch_zip_path)
      error_message = "The model watch package ${local.watch_zip_path} does not exist; build it with `make package` at the repository root."
    }
  }
}

resource "aws_cloudwatch_event_rule" "model_watch" {
  name                = local.watch_function_name
  description         = "Runs ${local.watch_function_name} (${var.model_watch_schedule})"
  schedule_expression = var.model_watch_schedule
}

resource "aws_cloudwatch_event_target" "model_watch" {
  rule      = aws_cloudwatch_event_rule.model_watch.name
  target_id = "model-watch"
  arn       = aws_lambda_function.model_watch.arn
}

# Only this rule may invoke the watch (source_arn), through EventBridge.
resource "aws_lambda_permission" "model_watch_schedule" {
  statement_id  = "AllowScheduleToInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.model_watch.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.model_watch.arn
}
