"""The whole system on one machine, with no AWS account and no Docker: developer tooling beside the core.

Each AWS service runs in a process of its own (moto, the Bedrock emulator, the API gateway with the API
handler, the queue poller with the worker), as they are separate services in AWS. Needs the ``local`` extra;
never bundled into Lambda.
"""
