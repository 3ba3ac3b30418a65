"""``python -m imagegen_cli``."""

from imagegen_cli.main import main

raise SystemExit(main())
