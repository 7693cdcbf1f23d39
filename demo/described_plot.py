"""A `gr.Plot` whose image has a real alt text: the figure's own one-line summary.

Gradio builds a matplotlib plot's alt text from a `chart` field that only its Altair plots
fill in, so every figure was announced as "undefined plot visualising provided data". The
figures in `demo.figures` carry their summary as their matplotlib label; this component puts
it where the browser reads it.

It also encodes matplotlib figures itself: one draw, then a lossless PNG at zlib level 1
(~5 ms for a 500 x 400 figure; Gradio's default lossy WebP blurs text and took ~20 ms, PNG
at the default level ~2x as long for a few percent fewer bytes).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData
from matplotlib.figure import Figure

from demo.figures import drawn


class DescribedPlotData(PlotData):
    chart: str = ""  # the page shows it as "{chart} plot visualising provided data"


def png_data_url(figure: Figure) -> str:
    """The figure drawn once (`drawn`) and encoded as a PNG data URL."""
    buffer = io.BytesIO()
    drawn(figure).save(buffer, format="png", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class DescribedPlot(gr.Plot):
    is_template = True  # the browser draws it with gr.Plot's own front end
    data_model = DescribedPlotData

    def postprocess(self, value: Any) -> DescribedPlotData | None:
        if isinstance(value, Figure):
            return DescribedPlotData(type="matplotlib", plot=png_data_url(value), chart=value.get_label())
        if isinstance(value, DescribedPlotData):  # encoded before (the first screen's figures): as it is
            return value
        data = super().postprocess(value)
        if data is None:
            return None
        return DescribedPlotData(type=data.type, plot=data.plot, chart="")
