"""Local development stack: tools that stand in for AWS services on a laptop or in CI.

Never bundled into the Lambda package (the build removes ``imagegen/local``); needs the ``local`` extra.
"""
