"""Label sets offered in the page; anything else is typed as "Custom"."""

from merclip.labels import EKMAN_SEVEN, MOSI_SEVEN, SENTIMENT_THREE

CUSTOM = "Custom"

PRESETS = {
    "Ekman's seven emotions": EKMAN_SEVEN,
    "Sentiment (3 classes)": SENTIMENT_THREE,
    "CMU-MOSI 7-level sentiment": MOSI_SEVEN,
}

DEFAULT_PRESET = "Ekman's seven emotions"
