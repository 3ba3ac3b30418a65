# The bucket for infra/'s Terraform state (backend "s3" with use_lockfile = true: the lock is a <key>.tflock object
# next to the state, no DynamoDB table). Versioned, so every earlier state can be restored.

resource "aws_s3_bucket" "state" {
  # checkov:skip=CKV_AWS_18:Server access logs would need a second bucket; every access to the state is by an IAM principal and can be audited with CloudTrail data events, which serve the same purpose.
  # checkov:skip=CKV_AWS_144:Cross-region replication would need a second bucket in another region; versioning already keeps every earlier state, and the state can be rebuilt with terraform import.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events of the state bucket; Terraform reads and writes it directly and locks it with a lock object.
  # checkov:skip=CKV_AWS_145:SSE-S3 (AES256) encrypts the state at rest without a customer managed key whose key policy every Terraform role would also need; access is controlled by IAM and the bucket policy.
  bucket = local.state_bucket_name

  # Destroying the bootstrap must never take the state of the deployed system with it.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs disabled: the account owns every object, access is decided by policies alone.
resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"

    filter {}

    # Superseded states (every apply writes one) are kept for state_noncurrent_version_days.
    noncurrent_version_expiration {
      noncurrent_days = var.state_noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  # S3 rejects a bucket policy while the public access block is being changed.
  depends_on = [aws_s3_bucket_public_access_block.state]
}
