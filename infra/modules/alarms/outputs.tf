output "topic_arn" {
  description = "ARN of the alarm topic."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "Names of the alarms, by purpose."
  value       = { for purpose, alarm in aws_cloudwatch_metric_alarm.this : purpose => alarm.alarm_name }
}

output "kms_key_arn" {
  description = "ARN of the customer managed key that encrypts the topic."
  value       = aws_kms_key.alerts.arn
}
