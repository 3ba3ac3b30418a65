"""``python -m bedrock_emulator``."""

from bedrock_emulator.emulator import main

raise SystemExit(main())
