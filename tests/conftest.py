"""Shared fixtures: offline settings, the tiny model, a real face image."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["MPLBACKEND"] = "Agg"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from merclip import load_model  # noqa: E402

TINY = "merclip-tiny:random"


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny random-weight model on CPU (a few ms per forward). Tests must not modify it."""
    return load_model(TINY, device="cpu")


@pytest.fixture(scope="session")
def tiny_app():
    """`python app.py` with the tiny CLIP and bundled Whisper on a free localhost port, shared by the app tests."""
    from tests.app_server import AppServer

    server = AppServer("--clip", TINY, "--device", "cpu")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """A real photograph of a smiling face."""
    from skimage.data import astronaut as astronaut_image

    return Image.fromarray(astronaut_image())


@pytest.fixture(scope="session")
def faces() -> list[Image.Image]:
    """Real face crops (Labeled Faces in the Wild subset shipped with scikit-image)."""
    from skimage.data import lfw_subset

    crops = lfw_subset()[:6]
    return [Image.fromarray((np.stack([c] * 3, axis=-1) * 255).astype(np.uint8)) for c in crops]


@pytest.fixture
def random_audio_features(tiny_model):
    """Acoustic frame features of the right width (values need not be real for the decoder maths)."""
    generator = np.random.default_rng(0)
    return generator.standard_normal((25, tiny_model.config.audio_feature_dim)).astype(np.float32)
