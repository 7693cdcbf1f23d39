"""Figures as pixels: one drawn for the page, or all of a result's figures as one PNG to keep."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from demo.figures.layout import new_figure

FIGURE_GAP = 12  # white pixels between the figures of the figures image


def drawn(figure: Figure) -> Image.Image:
    """The figure as an RGB image (opaque white: no alpha channel to encode). A figure drawn before and
    unchanged since is not drawn again: the page's figures image and its panels share one draw."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg) or figure.stale:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def caption_figure(text: str) -> Figure:
    """A figure of one title only: what a figures image shows (the clip, the part of it)."""
    figure, _ = new_figure(0.02, text)
    return figure


def figures_png(figures: Sequence[Figure]) -> bytes:
    """The figures one under the other as one PNG: a result to keep or share as it was seen."""
    images = [drawn(figure) for figure in figures]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)
                              + FIGURE_GAP * (len(images) - 1)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height + FIGURE_GAP
    buffer = io.BytesIO()
    sheet.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()
