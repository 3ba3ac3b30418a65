"""A local stand-in for Amazon Bedrock's image models: developer tooling, never bundled into Lambda.

Split the way moto splits a service: ``errors`` (the error catalogue), ``config`` (``EmulatorConfig``:
flag over ``BEDROCK_EMULATOR_*`` variable over default), ``wire`` (body validation per model family, pure),
``backend`` (state and behaviour, no sockets), ``server`` (HTTP and ``BedrockEmulator``), ``admin`` (a client
of a running emulator's admin routes), ``cli`` (``python -m bedrock_emulator``), ``render`` (placeholder
images: deterministic, NOT a generative model).
"""
