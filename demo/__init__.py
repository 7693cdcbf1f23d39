"""Gradio UI for MER-CLIP: the page, its tabs and figures, nothing model-specific."""
