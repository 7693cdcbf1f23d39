"""MER-CLIP: multimodal emotion recognition with CLIP label embeddings and a cross-modal decoder."""

from merclip.api import MerClip, load_model
from merclip.errors import MerClipError
from merclip.labels.parsing import parse_labels
from merclip.head.result import Prediction

__all__ = ["MerClip", "MerClipError", "Prediction", "load_model", "parse_labels"]
