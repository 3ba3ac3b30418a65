provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      project    = var.project_tag
      managed-by = "terraform"
      component  = "bootstrap"
    }
  }
}
