"""A first page: score an image against typed labels, or explain why no model is loaded.

If CLIP weights cannot be obtained, the page still opens and says which weights were
tried and how to provide them; with random weights it says the results are meaningless.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from merclip import MerClip, MerClipError

DEFAULT_LABELS = "happy, sad, angry, surprised, fearful, disgusted, neutral"


def status_markdown(model: MerClip | None, load_error: str | None) -> str:
    """What the page says about the model it runs."""
    if model is None:
        return f"### No model loaded\n\n{load_error}"
    if model.clip.random_weights:
        return (
            f"### Plumbing run: CLIP `{model.clip.spec.text}` has random weights\n\n"
            "Every number on this page is meaningless. Start the app with real weights to read emotions."
        )
    return f"Model: CLIP `{model.clip.spec.text}` on {model.device.type}."


def build_image_page(model: MerClip | None, load_error: str | None = None) -> gr.Blocks:
    with gr.Blocks(title="MER-CLIP") as page:
        gr.Markdown("# MER-CLIP: how does CLIP read the emotion in a face?")
        gr.Markdown(status_markdown(model, load_error), elem_id="model-status")
        if model is not None:
            with gr.Row():
                image = gr.Image(type="pil", label="Face image")
                with gr.Column():
                    labels = gr.Textbox(DEFAULT_LABELS, label="Labels (comma-separated, synonyms with |)")
                    run = gr.Button("Analyse", variant="primary")
            scores = gr.Label(label="Label probabilities")
            run.click(lambda img, text: _score(model, img, text), [image, labels], scores, api_name="predict_image")
    return page


def _score(model: MerClip, image: Image.Image | None, labels: str) -> dict[str, float]:
    if image is None:
        raise gr.Error("Upload an image first.")
    try:
        result = model.predict(model.features(images=[image]), labels)
    except MerClipError as exc:
        raise gr.Error(str(exc)) from None
    for warning in result.warnings:
        gr.Warning(warning)
    return dict(zip(result.labels, result.probs))
