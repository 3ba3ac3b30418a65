"""Shared core of the image-generation service: request validation, model adapters, Bedrock and S3."""

__version__ = "0.1.0"
