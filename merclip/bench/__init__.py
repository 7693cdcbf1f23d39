"""`python -m merclip bench`: where an analysis spends its time, live and batch figures, as ratios in one run.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.bench.report import format_report, run_bench

__all__ = ["format_report", "run_bench"]
