# Alarm topic (e-mail), the three alarms of the queue worker (backlog age, DLQ not empty, worker errors) and the
# lifecycle watch's own errors. The watch also publishes its findings to this topic (infra/model_watch.tf).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  alias_name = "alias/${var.name_prefix}-alerts"
  # Every alarm of this module is named <name_prefix>-... (alarm_names below).
  alarm_arn_pattern = "arn:${data.aws_partition.current.partition}:cloudwatch:${data.aws_region.current.name}:${local.account_id}:alarm:${var.name_prefix}-*"

  alarm_names = {
    queue_age          = "${var.name_prefix}-prompt-queue-oldest-message-age"
    dlq_not_empty      = "${var.name_prefix}-prompt-dlq-not-empty"
    worker_errors      = "${var.name_prefix}-queue-worker-errors"
    model_watch_errors = "${var.name_prefix}-model-watch-errors"
  }
}

# The topic is encrypted with a customer managed key rather than alias/aws/sns: CloudWatch alarms publish
# to an encrypted topic only if the key policy lets cloudwatch.amazonaws.com use the key, and the policy of
# the AWS managed aws/sns key cannot be changed (alarms would go to ALARM but no mail would ever be sent).
data "aws_iam_policy_document" "alerts_key" {
  # checkov:skip=CKV_AWS_109:A KMS key policy always applies to its own key only; "Resource": "*" in a key policy means "this key".
  # checkov:skip=CKV_AWS_111:A KMS key policy always applies to its own key only; "Resource": "*" in a key policy means "this key".
  # checkov:skip=CKV_AWS_356:A KMS key policy always applies to its own key only; "Resource": "*" in a key policy means "this key".
  statement {
    sid       = "AccountAdministersKey"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  # Only on behalf of this module's alarms in this account (confused-deputy protection: the service principal alone
  # would match CloudWatch acting for any alarm of any account).
  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.alarm_arn_pattern]
    }
  }

  # The key side of pointing this module's alias at the key, granted here and not in IAM: a principal of this
  # account that may manage the alias (infra/bootstrap's Terraform apply role may manage this one only) can alias
  # this key as long as it has no alias but this one, e.g. right after CreateKey, before tags count for
  # authorization. That role gets no such permission on any other key, so it can never put this alias - which its
  # key administration requires - on a key it did not create here.
  statement {
    sid       = "AccountMayAliasThisKey"
    effect    = "Allow"
    actions   = ["kms:CreateAlias", "kms:UpdateAlias"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [local.alias_name]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "Encrypts the ${var.name_prefix} alarm topic (usable by CloudWatch alarms)"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.alerts_key.json
}

resource "aws_kms_alias" "alerts" {
  name          = local.alias_name
  target_key_id = aws_kms_key.alerts.key_id
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = aws_kms_key.alerts.arn
}

resource "aws_sns_topic_subscription" "email" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

locals {
  # One entry per alarm; everything else (period, evaluation, missing data, ALARM and OK actions) is shared.
  alarms = {
    # Prompts wait too long: the worker is stopped, failing, throttled by Bedrock or under-scaled.
    queue_age = {
      description = "The oldest prompt in ${var.queue_name} has waited more than ${var.age_threshold_seconds} s."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = var.queue_name }
      statistic   = "Maximum"
      threshold   = var.age_threshold_seconds
    }
    # Any message in the DLQ is a prompt that produced no image and needs a human look.
    dlq_not_empty = {
      description = "${var.dlq_name} holds messages that could not be processed (see their error_code attribute)."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.dlq_name }
      statistic   = "Maximum"
      threshold   = 0
    }
    # An invocation failed as a whole (crash, timeout, misconfiguration), not just single records.
    worker_errors = {
      description = "The ${var.function_name} Lambda reported invocation errors."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = var.function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    # The watch failed (misconfiguration, no answer from Bedrock's control plane, IAM): without this alarm a watch
    # that stopped working would look like a chain with nothing to report.
    model_watch_errors = {
      description = "The ${var.watch_function_name} Lambda (the model lifecycle watch) failed; its log says why."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = var.watch_function_name }
      statistic   = "Sum"
      threshold   = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = local.alarm_names[each.key]
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  datapoints_to_alarm = var.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  # SQS and Lambda publish no data for idle queues and functions: no data means nothing is wrong.
  treat_missing_data = "notBreaching"
  actions_enabled    = true
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
}
