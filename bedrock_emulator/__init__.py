"""A local stand-in for Amazon Bedrock's image models: developer tooling, never bundled into Lambda.

Split the way moto splits a service: ``errors`` (the error catalogue), ``config`` (``EmulatorConfig``:
flag over ``BEDROCK_EMULATOR_*`` variable over default), ``lifecycle`` (THE table of which model is Active,
Legacy or end of life and where, with its overrides), ``wire`` (body validation per model family, pure),
``control`` (the control plane's replies from the table, pure), ``sigv4`` (a request's region), ``backend``
(state and behaviour, no sockets), ``server`` (HTTP and ``BedrockEmulator``), ``admin`` (a client of a
running emulator's admin routes), ``cli`` (``python -m bedrock_emulator``), ``render`` (placeholder images:
deterministic, NOT a generative model).
"""

#: The first line ``python -m bedrock_emulator`` prints, followed by its URL: a parent process (the local stack)
#: waits for it.
LISTENING = "Bedrock emulator listening on"
