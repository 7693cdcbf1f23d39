"""Gradio UI for MER-CLIP: pages and plots, nothing model-specific."""
