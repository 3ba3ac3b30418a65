data "aws_partition" "current" {}

# The account of the inference-profile ARNs (a system-defined profile is addressed in the caller's account).
data "aws_caller_identity" "current" {}

locals {
  queue_name    = "${var.name_prefix}-prompts"
  dlq_name      = "${var.name_prefix}-prompts-dlq"
  function_name = "${var.name_prefix}-queue-worker"

  # AWS's guidance for SQS event sources: at least six times the function timeout plus the batching window,
  # so Lambda has time to retry a batch whose invocation was throttled before the messages become visible.
  queue_visibility_timeout_seconds = 6 * var.worker_timeout_seconds + var.batching_window_seconds
  queue_retention_seconds          = 4 * 24 * 60 * 60  # 4 days
  dlq_retention_seconds            = 14 * 24 * 60 * 60 # 14 days, the SQS maximum

  # Object keys of queue-generated images: {key_prefix}/generated_images/from_queue/{message_id}-{i}.png|.json
  # (see imagegen/storage.py and imagegen/queue.py).
  object_key_base     = var.key_prefix == "" ? "" : "${var.key_prefix}/"
  queue_images_folder = "${local.object_key_base}generated_images/from_queue/"

  # A relative zip path is relative to this directory, not to the caller's working directory.
  worker_zip_path = startswith(var.worker_zip_path, "/") ? var.worker_zip_path : "${path.module}/${var.worker_zip_path}"

  # The partition and, for inference profiles, the account: every other ARN comes from a resource attribute.
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  # The model chain (var.model_id), parsed as imagegen/chain.py's parse_chain does: "id" or "id@region" per entry,
  # no region = var.bedrock_region; an id with an inference-profile prefix (chain.py's INFERENCE_PROFILE_PREFIXES)
  # is a cross-region inference profile whose foundation model is the id without that prefix.
  profile_prefix = "^(us|eu|apac|us-gov|global)\\."
  model_chain = [
    for entry in split(",", var.model_id) : {
      model_id      = split("@", entry)[0]
      region        = strcontains(entry, "@") ? split("@", entry)[1] : var.bedrock_region
      base_model_id = replace(split("@", entry)[0], "/${local.profile_prefix}/", "")
      is_profile    = can(regex(local.profile_prefix, split("@", entry)[0]))
    }
  ]
  # What the worker may invoke: per entry, the foundation model in its region, or the inference profile (in its
  # region, of this account) and, only through that profile, the foundation model behind it in any region.
  model_grants = [
    for entry in local.model_chain : merge(entry, {
      profile_arn = "arn:${local.partition}:bedrock:${entry.region}:${local.account_id}:inference-profile/${entry.model_id}"
      model_arn   = "arn:${local.partition}:bedrock:${entry.region}::foundation-model/${entry.model_id}"
      routed_arn  = "arn:${local.partition}:bedrock:*::foundation-model/${entry.base_model_id}"
    })
  ]
}
