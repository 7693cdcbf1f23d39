"""Where this process runs: whether the Hugging Face hub can be reached, whether this is a ZeroGPU Space.

The other stages use only the names in `__all__`; see docs/design.md for who calls whom.
"""

from merclip.host.zero_gpu import zero_gpu_mode

__all__ = ["zero_gpu_mode"]
