"""The ``imagegen`` command: send prompts to the API or the queue, run the local stack or the demo.

Developer tooling beside the core: never bundled into Lambda. ``generate`` and ``enqueue`` need only boto3
(the client container); ``local`` and ``demo`` need the ``local`` extra.
"""
