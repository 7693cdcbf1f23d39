"""The command line: `python -m merclip predict|bench|doctor`, and the host check behind `doctor`.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.commands.cli import main

__all__ = ["main"]
