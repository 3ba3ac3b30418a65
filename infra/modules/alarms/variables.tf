variable "name_prefix" {
  description = "Prefix of the alarm, topic and key alias names."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of lower-case letters, digits and hyphens."
  }
}

variable "queue_name" {
  description = "Name of the prompt queue (pass the queue resource's name attribute)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.queue_name))
    error_message = "queue_name must be an SQS standard queue name."
  }
}

variable "dlq_name" {
  description = "Name of the dead-letter queue (pass the queue resource's name attribute)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.dlq_name))
    error_message = "dlq_name must be an SQS standard queue name."
  }
}

variable "function_name" {
  description = "Name of the worker Lambda function (pass the function resource's function_name attribute)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be a Lambda function name."
  }
}

variable "watch_function_name" {
  description = "Name of the lifecycle watch Lambda function (pass the function resource's function_name attribute)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.watch_function_name))
    error_message = "watch_function_name must be a Lambda function name."
  }
}

variable "alert_email" {
  description = "E-mail address subscribed to the alarm topic (must confirm the subscription)."
  type        = string

  validation {
    condition     = can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.alert_email))
    error_message = "alert_email must be a single e-mail address."
  }
}

variable "age_threshold_seconds" {
  description = "Alarm when ApproximateAgeOfOldestMessage of the prompt queue exceeds this many seconds."
  type        = number

  validation {
    condition     = var.age_threshold_seconds >= 60
    error_message = "age_threshold_seconds must be at least 60."
  }
}

variable "evaluation_periods" {
  description = "Consecutive periods a condition must hold before an alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.evaluation_periods >= 1 && var.evaluation_periods <= 60 && floor(var.evaluation_periods) == var.evaluation_periods
    error_message = "evaluation_periods must be a whole number between 1 and 60."
  }
}

variable "period_seconds" {
  description = "Length of one evaluation period. SQS and Lambda publish one-minute metrics."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 300, 900, 3600], var.period_seconds)
    error_message = "period_seconds must be one of 60, 300, 900 or 3600."
  }
}
