"""The page: a video in, typed labels, and every figure of one analysis out.

UI only: what happens on each event lives in `demo.service`, the figures in
`demo.plots`, the models in `demo.models`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from demo.models import NO_CHECKPOINT, ModelStore
from demo.presets import CUSTOM, DEFAULT_PRESET, PRESETS
from demo.service import AnalysisService
from merclip.limits import Limits
from merclip.templates import DEFAULT_TEMPLATES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLES = (
    ("examples/great_news.mp4", "Ekman's seven emotions"),
    ("examples/rough_day.mp4", "Sentiment (3 classes)"),
)
INTRO = """# MER-CLIP: how does CLIP read emotion from a face, a voice and words?
Record or upload a short video, type the labels you want (comma-separated; `happy|joyful` are synonyms of one
label, `positive=1` gives a label a numeric anchor), and press **Analyse**. Changing only the labels or templates
re-scores the same clip in a fraction of a second."""


def build_page(store: ModelStore, service: AnalysisService) -> gr.Blocks:
    with gr.Blocks(title="MER-CLIP", delete_cache=(600, 3600)) as page:  # every 10 min, files over an hour old
        gr.Markdown(INTRO)
        status = gr.Markdown(store.status_markdown, elem_id="model-status")
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(label="Video (upload, or record with sound)", sources=["upload", "webcam"],
                                 include_audio=True, height=320, elem_id="video")
                preset = gr.Dropdown([*PRESETS, CUSTOM], value=DEFAULT_PRESET, label="Label set")
                labels = gr.Textbox(PRESETS[DEFAULT_PRESET], label="Labels", lines=2,
                                    info="comma-separated; synonyms with |; numeric anchors with =")
                with gr.Row():
                    analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                    rescore = gr.Button("Re-score labels", elem_id="rescore")
                with gr.Accordion("Advanced", open=False):
                    vision_templates, text_templates, audio_templates = (
                        gr.Textbox("", label=f"{m.capitalize()} templates", placeholder="; ".join(DEFAULT_TEMPLATES[m]),
                                   info="separated by ;, each with {} for the label; empty = the model's own")
                        for m in ("vision", "text", "audio")
                    )
                    frames = gr.Slider(1, Limits.max_frames, value=Limits.frames, step=1, label="Video frames to sample")
                    detect_faces = gr.Checkbox(True, label="Detect faces (otherwise whole frames)")
                    transcript = gr.Textbox("", label="Transcript override", lines=2,
                                            placeholder="type what is said to skip speech recognition")
                    clip = gr.Dropdown(store.clip_choices, value=store.default.clip, label="CLIP model")
                    whisper = gr.Dropdown(store.whisper_choices, value=store.default.whisper, label="Whisper model")
                    checkpoint = gr.Dropdown(store.checkpoint_choices, value=store.default.checkpoint or NO_CHECKPOINT,
                                             label="Trained checkpoint", visible=len(store.checkpoint_choices) > 1)
            with gr.Column(scale=3):
                bars = gr.Plot(label="Label similarity", elem_id="bars")
                warnings = gr.Markdown(elem_id="warnings")
                summary = gr.Markdown(elem_id="summary")
        stage_plots = [gr.Plot(label=f"Decoder stage {i + 1} attention", elem_id=f"stage-{i + 1}") for i in range(3)]
        with gr.Row():
            gallery = gr.Gallery(label="Sampled face crops", columns=4, height=260, elem_id="crops")
            transcript_view = gr.HighlightedText(label="Transcript, shaded by the top label's text attention",
                                                 elem_id="transcript")
        timeline = gr.Plot(label="Label similarity over the clip", elem_id="timeline")
        with gr.Accordion("Full result (JSON)", open=False):
            result = gr.JSON(label="Result")
            download = gr.File(label="Download the result")
            clip_id = gr.Textbox(label="clip_id (for the rescore API)", interactive=False)

        outputs = [bars, *stage_plots, timeline, gallery, transcript_view, summary, warnings, result, download, clip_id]
        templates = [vision_templates, text_templates, audio_templates]
        analyse.click(service.predict,
                      [video, labels, *templates, frames, detect_faces, transcript, clip, whisper, checkpoint],
                      outputs, api_name="predict", concurrency_limit=1, concurrency_id="analyse")
        rescore.click(service.rescore, [clip_id, labels, *templates], outputs, api_name="rescore",
                      concurrency_limit=4, concurrency_id="rescore")
        for trigger in (labels.submit, *(t.submit for t in templates)):
            trigger(service.rescore_if_analysed, [clip_id, labels, *templates], outputs,
                    api_visibility="private", concurrency_id="rescore")
        preset.input(lambda name: gr.skip() if name == CUSTOM else PRESETS[name], preset, labels,
                     api_visibility="private").then(
            service.rescore_if_analysed, [clip_id, labels, *templates], outputs, api_visibility="private",
            concurrency_id="rescore")
        labels.input(lambda: CUSTOM, None, preset, api_visibility="private", queue=False)
        video.change(lambda: "", None, clip_id, api_visibility="private", queue=False)

        examples = [[str(ASSETS / path), PRESETS[name]] for path, name in EXAMPLES if (ASSETS / path).is_file()]
        if examples:
            gr.Examples(examples, [video, labels], label="Examples (press Analyse after choosing one)")

        timer = gr.Timer(1.5, active=store.loading)
        timer.tick(lambda: (store.status_markdown(), gr.Timer(active=store.loading)), None, [status, timer],
                   api_visibility="private", queue=False)
    return page
