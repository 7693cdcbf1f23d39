"""`python -m merclip ...`: see merclip/cli.py."""

import sys

from merclip.cli import main

sys.exit(main())
