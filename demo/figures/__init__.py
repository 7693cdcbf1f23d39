"""The page's figures: one analysis drawn with matplotlib, a module per figure.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so concurrent requests never
share pyplot's global state and nothing piles up in its registry. Each figure carries its title
inside (the page hides Gradio's panel tags, which cover a figure's top-left corner on a phone)
and a one-line text summary as its matplotlib label, ending with the kind of plot, which
`demo.described_plot` makes the image's alt text ("... Bar plot visualising provided data").

Every label is drawn in its own colour, the same in every figure (`demo.palette`); the winner is
marked by weight (bold name, dark outline, thicker line), never by a colour. What the figures
share (size, fonts, text measured without drawing, titles and axes placed in inches) is in
`demo.figures.layout`.
"""

from demo.figures.attention_heatmaps import STAGE_NAMES, stage_heatmaps
from demo.figures.face_timeline import frame_timeline
from demo.figures.image import caption_figure, drawn, figures_png
from demo.figures.label_similarity import similarity_bars
from demo.figures.layout import DPI, WIDTH, label_colours, nice_ticks, spread
from demo.figures.utterance_timeline import segment_timeline

__all__ = [
    "DPI", "WIDTH", "STAGE_NAMES", "caption_figure", "drawn", "figures_png", "frame_timeline", "label_colours",
    "nice_ticks", "segment_timeline", "similarity_bars", "spread", "stage_heatmaps",
]
