"""Where this process runs: whether the Hugging Face hub can be reached, whether this is a ZeroGPU Space.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.host.zero_gpu import zero_gpu_mode

__all__ = ["zero_gpu_mode"]
