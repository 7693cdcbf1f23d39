"""Named label sets shared by the page's presets and the training scripts."""

EKMAN_SEVEN = "happy, sad, angry, surprised, fearful, disgusted, contemptuous"
SENTIMENT_THREE = "negative=-1, neutral=0, positive=1"
# CMU-MOSI/MOSEI annotate sentiment from -3 to 3; one anchored label per level, so the
# probability-weighted anchor is a score on the same scale.
MOSI_SEVEN = ("strongly negative=-3, negative=-2, weakly negative=-1, neutral=0, "
              "weakly positive=1, positive=2, strongly positive=3")
