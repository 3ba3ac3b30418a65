# ------------------------------------------------------------------------------ required --

variable "alert_email" {
  description = "E-mail address subscribed to the alarm topic. AWS sends a confirmation mail that must be accepted before any alarm is delivered."
  type        = string

  validation {
    condition     = can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.alert_email))
    error_message = "alert_email must be a single e-mail address such as ops@example.com."
  }
}

variable "bucket_name" {
  description = "Existing S3 bucket that receives the generated images (the same bucket the API writes to). Terraform does not create or manage it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 characters, lower-case letters, digits, dots and hyphens."
  }
}

variable "images_table_name" {
  description = "The gallery's DynamoDB index table: the SAM stack's output ImagesTableName (like bucket_name, it is the API stack's). The worker adds one item per image it stores (dynamodb:PutItem on this table only). It must be in aws_region."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.images_table_name))
    error_message = "images_table_name must be a DynamoDB table name: 3-255 letters, digits, '_', '.' or '-'."
  }
}

variable "jobs_table_name" {
  description = "The job records' DynamoDB table: the SAM stack's output JobsTableName (like images_table_name, it is the API stack's). The worker claims, updates and ends the record of each job it runs (dynamodb:GetItem and dynamodb:UpdateItem on this table only). It must be in aws_region."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.jobs_table_name))
    error_message = "jobs_table_name must be a DynamoDB table name: 3-255 letters, digits, '_', '.' or '-'."
  }
}

# ------------------------------------------------------------------------------- general --

variable "aws_region" {
  description = "Region for the queue, worker, alarms and topic."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region code such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (queues, function, role, alarms, topic)."
  type        = string
  default     = "imagegen"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of lower-case letters, digits and hyphens, starting with a letter or digit."
  }
}

variable "key_prefix" {
  description = "Optional S3 key prefix without leading or trailing slash, e.g. \"candidate\". Images go to {key_prefix}/generated_images/from_queue/ (generated_images/from_queue/ when empty)."
  type        = string
  default     = ""

  validation {
    # No slashes at either end and no IAM wildcard characters, so the S3 permissions stay scoped to exactly this prefix.
    condition     = can(regex("^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$", var.key_prefix))
    error_message = "key_prefix must be empty or path segments of letters, digits, '_', '.', '-' separated by '/', with no leading or trailing '/'."
  }
}

# --------------------------------------------------------------------------------- model --

variable "model_id" {
  description = "The model chain (MODEL_ID): Bedrock model or inference-profile ids in order of preference, separated by commas without spaces, each model-id or model-id@region (no region: bedrock_region). The worker may invoke exactly these (an inference profile: the profile, and the model behind it only through the profile). Every model must be in the bootstrap's bedrock_model_ids (the permissions boundary)."
  type        = string
  default     = "amazon.titan-image-generator-v1@us-east-1,stability.stable-image-core-v1:1@us-west-2"

  validation {
    # imagegen/chain.py's patterns for the id and the region, at most 10 entries.
    condition = length(split(",", var.model_id)) <= 10 && alltrue([
      for entry in split(",", var.model_id) : can(regex("^[a-z0-9-]+(\\.[a-z0-9-]+)+(:[A-Za-z0-9_.-]+)*(@[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+)?$", entry))
    ])
    error_message = "model_id must be 1 to 10 comma-separated entries without spaces, each a Bedrock model or inference-profile id with an optional @region, e.g. amazon.titan-image-generator-v1@us-east-1,stability.stable-image-core-v1:1@us-west-2."
  }

  validation {
    # As parse_chain: an entry without a region is the same as one in bedrock_region.
    condition = length(split(",", var.model_id)) == length(distinct([
      for entry in split(",", var.model_id) : strcontains(entry, "@") ? entry : "${entry}@${var.bedrock_region}"
    ]))
    error_message = "model_id lists an entry twice (an entry without a region is in bedrock_region)."
  }
}

variable "bedrock_region" {
  description = "Region of the model_id entries that name none (the model must be enabled there)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.bedrock_region))
    error_message = "bedrock_region must be an AWS region code such as us-east-1."
  }
}

variable "model_cooldown_seconds" {
  description = "How long a worker container skips a chain entry that Bedrock called unusable (end of life, no access, not offered in the region) before it tries it again (MODEL_COOLDOWN_SECONDS)."
  type        = number
  default     = 900

  validation {
    condition     = var.model_cooldown_seconds >= 0 && var.model_cooldown_seconds <= 86400 && floor(var.model_cooldown_seconds) == var.model_cooldown_seconds
    error_message = "model_cooldown_seconds must be a whole number between 0 and 86400."
  }
}

variable "bedrock_read_timeout_seconds" {
  description = "Read timeout of one Bedrock call made by the worker (BEDROCK_READ_TIMEOUT_SECONDS). Must be shorter than worker_timeout_seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.bedrock_read_timeout_seconds >= 1 && var.bedrock_read_timeout_seconds < var.worker_timeout_seconds && floor(var.bedrock_read_timeout_seconds) == var.bedrock_read_timeout_seconds
    error_message = "bedrock_read_timeout_seconds must be a whole number of seconds, at least 1 and less than worker_timeout_seconds."
  }
}

# ------------------------------------------------------------------------------------ IAM --

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the worker's role: infra/bootstrap's output permissions_boundary_arn (repository variable AWS_PERMISSIONS_BOUNDARY_ARN, passed as TF_VAR_permissions_boundary_arn). Required when Terraform runs as the bootstrap's apply role, which may create roles only with it. \"\" = no boundary (local applies with administrator credentials, tests)."
  type        = string
  default     = ""
  validation {
    condition     = var.permissions_boundary_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be empty or the ARN of an IAM managed policy."
  }
}

# -------------------------------------------------------------------------------- worker --

variable "worker_zip_path" {
  description = "Deployment zip of the queue worker, built by `make package`. A relative path is resolved against this directory (infra/)."
  type        = string
  default     = "../build/sqs_worker.zip"

  validation {
    condition     = endswith(var.worker_zip_path, ".zip")
    error_message = "worker_zip_path must point to a .zip file (build it with `make package`)."
  }
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker function. The queue's visibility timeout is derived from it (6 x timeout + batching window)."
  type        = number
  default     = 300

  validation {
    condition     = var.worker_timeout_seconds >= 1 && var.worker_timeout_seconds <= 900 && floor(var.worker_timeout_seconds) == var.worker_timeout_seconds
    error_message = "worker_timeout_seconds must be a whole number between 1 and 900 (the Lambda maximum)."
  }
}

variable "worker_memory_mb" {
  description = "Memory of the worker function in MB (CPU scales with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.worker_memory_mb >= 128 && var.worker_memory_mb <= 10240 && floor(var.worker_memory_mb) == var.worker_memory_mb
    error_message = "worker_memory_mb must be a whole number between 128 and 10240."
  }
}

variable "worker_concurrency" {
  description = "Records of one batch processed concurrently inside a single invocation (WORKER_CONCURRENCY), i.e. parallel Bedrock calls per invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_concurrency >= 1 && var.worker_concurrency <= 100 && floor(var.worker_concurrency) == var.worker_concurrency
    error_message = "worker_concurrency must be a whole number between 1 and 100."
  }
}

variable "retry_base_seconds" {
  description = "First delay before a message that failed transiently is received again (RETRY_BASE_SECONDS); it doubles on each receive, with up to 20 % jitter, up to SQS's 15-minute visibility limit."
  type        = number
  default     = 30

  validation {
    # imagegen/config.py reads at most 900 (the longest visibility change SQS accepts).
    condition     = var.retry_base_seconds > 0 && var.retry_base_seconds <= 900 && floor(var.retry_base_seconds) == var.retry_base_seconds
    error_message = "retry_base_seconds must be a whole number of seconds greater than 0 and at most 900."
  }
}

variable "log_level" {
  description = "Powertools log level of the worker (POWERTOOLS_LOG_LEVEL), as the API function's LogLevel parameter in template.yaml."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR."
  }
}

# ---------------------------------------------------------------- event source mapping --

variable "batch_size" {
  description = "Maximum number of messages per invocation."
  type        = number
  default     = 10

  validation {
    # SQS allows up to 10000, but a batch must finish within one invocation; 100 keeps that realistic.
    # Above 10 records AWS requires a batching window of at least 1 second.
    condition     = var.batch_size >= 1 && var.batch_size <= 100 && floor(var.batch_size) == var.batch_size && (var.batch_size <= 10 || var.batching_window_seconds >= 1)
    error_message = "batch_size must be a whole number between 1 and 100; above 10 batching_window_seconds must be at least 1."
  }
}

variable "batching_window_seconds" {
  description = "Maximum time Lambda waits to fill a batch before invoking the worker. 0: a job starts as soon as its message is received (people follow jobs on the page); under load batches still fill from the backlog."
  type        = number
  default     = 0

  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300 && floor(var.batching_window_seconds) == var.batching_window_seconds
    error_message = "batching_window_seconds must be a whole number between 0 and 300."
  }
}

variable "max_concurrency" {
  description = "Maximum concurrent worker invocations started by the queue (event source mapping scaling_config.maximum_concurrency); bounds the load on Bedrock."
  type        = number
  default     = 5

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000 && floor(var.max_concurrency) == var.max_concurrency
    error_message = "max_concurrency must be a whole number between 2 and 1000 (the limits of SQS maximum concurrency)."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the dead-letter queue (transient failures are retried until then)."
  type        = number
  default     = 5

  validation {
    # Below 5, messages throttled by the maximum-concurrency limit can reach the DLQ without ever being processed.
    condition     = var.max_receive_count >= 5 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number between 5 and 1000."
  }
}

# --------------------------------------------------------------------------- model watch --

variable "model_watch_zip_path" {
  description = "Deployment zip of the model lifecycle watch, built by `make package`. A relative path is resolved against this directory (infra/)."
  type        = string
  default     = "../build/model_watch.zip"

  validation {
    condition     = endswith(var.model_watch_zip_path, ".zip")
    error_message = "model_watch_zip_path must point to a .zip file (build it with `make package`)."
  }
}

variable "model_watch_days" {
  description = "The watch reports a model of the chain whose announced end of life is at most this many days away (MODEL_WATCH_DAYS), besides every Legacy, ended, unoffered or inaccessible one."
  type        = number
  default     = 60

  validation {
    # model_watch/app.py's WATCH_DAYS_RANGE.
    condition     = var.model_watch_days >= 1 && var.model_watch_days <= 365 && floor(var.model_watch_days) == var.model_watch_days
    error_message = "model_watch_days must be a whole number between 1 and 365."
  }
}

variable "model_watch_schedule" {
  description = "When the watch runs: an EventBridge schedule expression, rate(...) or cron(...), in UTC. Default: once a day."
  type        = string
  default     = "rate(1 day)"

  validation {
    # EventBridge's forms: rate(1 minute|hour|day) or rate(N minutes|hours|days), and cron() with six fields.
    condition     = can(regex("^(rate\\((1 (minute|hour|day)|[1-9][0-9]* (minutes|hours|days))\\)|cron\\(\\S+( \\S+){5}\\))$", var.model_watch_schedule))
    error_message = "model_watch_schedule must be an EventBridge schedule expression such as rate(1 day), rate(12 hours) or cron(0 7 * * ? *)."
  }
}

# -------------------------------------------------------------------------------- alarms --

variable "alarm_age_threshold_seconds" {
  description = "Alarm when the oldest message in the prompt queue is older than this many seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.alarm_age_threshold_seconds >= 60 && var.alarm_age_threshold_seconds <= 345600 && floor(var.alarm_age_threshold_seconds) == var.alarm_age_threshold_seconds
    error_message = "alarm_age_threshold_seconds must be a whole number between 60 and 345600 (the queue's 4-day retention)."
  }
}

variable "alarm_evaluation_periods" {
  description = "Consecutive one-minute periods a condition must hold before an alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && var.alarm_evaluation_periods <= 60 && floor(var.alarm_evaluation_periods) == var.alarm_evaluation_periods
    error_message = "alarm_evaluation_periods must be a whole number between 1 and 60."
  }
}

variable "log_retention_days" {
  description = "Retention of the worker's and the model watch's CloudWatch log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}
