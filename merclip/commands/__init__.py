"""The command line: `python -m merclip predict|bench|doctor`, and the host check behind `doctor`.

The other stages use only the names in `__all__`; see docs/design.md for who calls whom.
"""

from merclip.commands.cli import main

__all__ = ["main"]
