"""CLIP itself: loading a model from a SPEC, its image tower on crops, its text tower on packed prompts and per word.

The other stages use only the names in `__all__`; see docs/design.md for who calls whom.
"""

from merclip.clip.loader import ClipBundle, DEFAULT_CLIP, load_clip, resolve_device
from merclip.clip.word_features import encode_transcript

__all__ = ["ClipBundle", "DEFAULT_CLIP", "encode_transcript", "load_clip", "resolve_device"]
