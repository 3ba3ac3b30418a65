"""Shared core of the image-generation service: request validation, model adapters, Bedrock and S3.

This package is exactly what the Lambda bundles ship besides their handler; it depends on boto3 only.
"""
