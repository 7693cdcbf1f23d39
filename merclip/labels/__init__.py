"""What a user types, made into labels: parsing and validation, prompt templates, label embeddings, named sets.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.labels.named_sets import EKMAN_SEVEN, MOSI_SEVEN, SENTIMENT_THREE
from merclip.labels.parsing import Label, LabelSet, parse_labels
from merclip.labels.templates import DEFAULT_TEMPLATES, MODALITIES, parse_templates

__all__ = ["DEFAULT_TEMPLATES", "EKMAN_SEVEN", "Label", "LabelSet", "MODALITIES", "MOSI_SEVEN", "SENTIMENT_THREE",
           "parse_labels", "parse_templates"]
