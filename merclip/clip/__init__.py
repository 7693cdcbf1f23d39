"""CLIP itself: loading a model from a SPEC, its image tower on crops, its text tower on packed prompts and per word.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.clip.loader import DEFAULT_CLIP, ClipBundle, load_clip, resolve_device
from merclip.clip.word_features import encode_transcript

__all__ = ["ClipBundle", "DEFAULT_CLIP", "encode_transcript", "load_clip", "resolve_device"]
