"""MER-CLIP: multimodal emotion recognition with CLIP label embeddings and a cross-modal decoder."""

from merclip.api import MerClip, load_model
from merclip.errors import MerClipError
from merclip.head.result import Prediction
from merclip.labels.parsing import parse_labels

__all__ = ["MerClip", "MerClipError", "Prediction", "load_model", "parse_labels"]
