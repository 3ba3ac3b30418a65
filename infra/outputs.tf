output "queue_url" {
  description = "URL of the prompt queue (aws sqs send-message --queue-url ...)."
  value       = aws_sqs_queue.prompts.url
}

output "queue_arn" {
  description = "ARN of the prompt queue."
  value       = aws_sqs_queue.prompts.arn
}

output "queue_name" {
  description = "Name of the prompt queue."
  value       = aws_sqs_queue.prompts.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "function_name" {
  description = "Name of the queue worker Lambda."
  value       = aws_lambda_function.worker.function_name
}

output "event_source_mapping_uuid" {
  description = "UUID of the queue -> worker event source mapping (to pause it: aws lambda update-event-source-mapping --uuid ... --no-enabled)."
  value       = aws_lambda_event_source_mapping.prompts.uuid
}

output "topic_arn" {
  description = "ARN of the SNS topic the alarms notify."
  value       = module.alarms.topic_arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms, by purpose (queue_age, dlq_not_empty, worker_errors, model_watch_errors)."
  value       = module.alarms.alarm_names
}

output "model_watch_function_name" {
  description = "Name of the model lifecycle watch Lambda (run it now: aws lambda invoke --function-name ... out.json)."
  value       = aws_lambda_function.model_watch.function_name
}

output "model_watch_rule_name" {
  description = "Name of the EventBridge rule that runs the watch on model_watch_schedule."
  value       = aws_cloudwatch_event_rule.model_watch.name
}
