output "topic_arn" {
  description = "ARN of the alarm topic."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "Names of the alarms, by purpose."
  value = {
    queue_age     = aws_cloudwatch_metric_alarm.queue_age.alarm_name
    dlq_not_empty = aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name
    worker_errors = aws_cloudwatch_metric_alarm.worker_errors.alarm_name
  }
}

output "kms_key_arn" {
  description = "ARN of the customer managed key that encrypts the topic."
  value       = aws_kms_key.alerts.arn
}
