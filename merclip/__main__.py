"""`python -m merclip ...`: see merclip/commands/cli.py."""

import sys

from merclip.commands.cli import main

sys.exit(main())
