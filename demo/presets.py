"""Label sets offered in the page; anything else is typed as "Custom"."""

CUSTOM = "Custom"

PRESETS = {
    "Ekman's seven emotions": "happy, sad, angry, surprised, fearful, disgusted, contemptuous",
    "Sentiment (3 classes)": "negative=-1, neutral=0, positive=1",
    "CMU-MOSI 7-level sentiment": (
        "strongly negative=-3, negative=-2, weakly negative=-1, neutral=0, "
        "weakly positive=1, positive=2, strongly positive=3"
    ),
}

DEFAULT_PRESET = "Ekman's seven emotions"
