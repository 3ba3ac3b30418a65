module "alarms" {
  source = "./modules/alarms"

  name_prefix           = var.name_prefix
  queue_name            = aws_sqs_queue.prompts.name
  dlq_name              = aws_sqs_queue.dead_letter.name
  function_name         = aws_lambda_function.worker.function_name
  watch_function_name   = aws_lambda_function.model_watch.function_name
  alert_email           = var.alert_email
  age_threshold_seconds = var.alarm_age_threshold_seconds
  evaluation_periods    = var.alarm_evaluation_periods
}
