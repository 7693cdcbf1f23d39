"""`python -m merclip predict|bench|doctor`: the command line (merclip/commands/cli.py)."""

import sys

from merclip.commands.cli import main

sys.exit(main())
