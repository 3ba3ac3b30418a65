"""``python -m bedrock_emulator``."""

from bedrock_emulator.cli import main

raise SystemExit(main())
