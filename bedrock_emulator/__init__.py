"""A local stand-in for Amazon Bedrock's image models: developer tooling, never bundled into Lambda."""
