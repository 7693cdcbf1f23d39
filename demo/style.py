"""The page's theme and CSS (Gradio 6 takes both at `launch()`).

Colours are chosen for contrast (WCAG AA, 4.5:1 for text): Gradio's default hint text
(#BBBBC2 on white, 1.9:1) and its orange primary button (white on #F97316, 2.8:1) are too
faint, so hints use a dark grey and the button a darker orange.
"""

from __future__ import annotations

import gradio as gr

from demo.figures import DPI, WIDTH

HINT_TEXT = "#4b5563"  # on white: 7.6:1
HINT_TEXT_DARK = "#d1d5db"  # on Gradio's dark background
BUTTON = "#c2410c"  # white text on it: 5.2:1
BUTTON_HOVER = "#9a3412"


def theme() -> gr.themes.Base:
    return gr.themes.Default().set(
        block_info_text_color=HINT_TEXT, block_info_text_color_dark=HINT_TEXT_DARK,
        button_primary_background_fill=BUTTON, button_primary_background_fill_hover=BUTTON_HOVER,
        button_primary_background_fill_dark=BUTTON, button_primary_background_fill_hover_dark=BUTTON_HOVER,
        button_primary_text_color="white", button_primary_text_color_dark="white",
    )


# A phone shows a figure at its own width (at most two-thirds of the rest is a sideways scroll away): shrunk
# to a 390 px screen's column (~324 px), its smallest text (8 pt at 100 dpi) would be 7 px; at 500 px it is 11.
PHONE_FIGURE = round(WIDTH * DPI)

PHONE_CSS = f"""@media (max-width: 640px) {{
  .figure .matplotlib {{ overflow-x: auto; align-items: flex-start !important; }}
  .figure img {{ width: max(100%, {PHONE_FIGURE}px); max-width: none; flex-shrink: 0; }}
  #summary td, #summary th {{ padding: 2px 3px; }}
}}
"""

CSS = """
#label-note p { color: #b91c1c; font-weight: 600; margin: 0; }
#stale p { background: #fef3c7; color: #78350f; padding: 4px 8px; border-radius: 4px; margin: 0; }
.figure img { width: 100%; height: auto; }
#summary table { font-size: 0.85em; word-break: normal; overflow-wrap: normal; }
#summary td, #summary th { white-space: nowrap; padding: 2px 6px; }
#summary { overflow-x: auto; }
#timeline { max-width: 760px; }
#video video { max-height: 230px; }
#video .controls { opacity: 1 !important; }
#other-media .upload-container { min-height: 0 !important; height: auto !important; padding: 14px 0 6px; }
#other-media [data-testid="upload-text"] { flex-direction: row; flex-wrap: wrap; justify-content: center; gap: 4px;
  min-height: 0; }
#other-media .icon-wrap { display: none; }
#heading p, #media-note p { margin: 0; }
#media-note p { color: #b91c1c; font-weight: 600; }
#crops { height: auto !important; }
#segment-choice input { padding-right: 2em; text-overflow: ellipsis; }
#live-microphone .record-button, #live-microphone .stop-button { display: none; }  /* the camera's Record drives it */
footer, footer a, footer button { color: var(--block-info-text-color) !important; }
.meta-text, .meta-text-center, .progress-text { font-size: var(--text-lg) !important; font-family: var(--font) !important; }
""" + PHONE_CSS
