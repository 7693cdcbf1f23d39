"""A `gr.Plot` whose image has a real alt text: the figure's own one-line summary.

Gradio builds a matplotlib plot's alt text from a `chart` field that only its Altair plots
fill in, so every figure was announced as "undefined plot visualising provided data". The
figures in `demo.plots` carry their summary as their matplotlib label; this component puts
it where the browser reads it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.components.plot import PlotData
from matplotlib.figure import Figure


class DescribedPlotData(PlotData):
    chart: str = ""  # the page shows it as "{chart} plot visualising provided data"


class DescribedPlot(gr.Plot):
    is_template = True  # the browser draws it with gr.Plot's own front end
    data_model = DescribedPlotData

    def postprocess(self, value: Any) -> DescribedPlotData | None:
        data = super().postprocess(value)
        if data is None:
            return None
        summary = value.get_label() if isinstance(value, Figure) else ""
        return DescribedPlotData(type=data.type, plot=data.plot, chart=summary)
