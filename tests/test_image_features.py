"""CLIP image features: ordinary frames exactly as open_clip sees them, extreme strips cropped first."""

import numpy as np
import torch
from PIL import Image

from merclip.clip.image_features import MAX_ASPECT, encode_images


def open_clip_features(clip, image: Image.Image) -> torch.Tensor:
    with torch.no_grad():
        return clip.model.encode_image(clip.preprocess(image)[None], normalize=True)[0]


def test_ordinary_frames_are_encoded_exactly_as_open_clip_does(tiny_model, astronaut):
    wide = astronaut.resize((640, 160))  # 4:1, far from the crop threshold
    features = encode_images(tiny_model.clip, [astronaut, wide])
    assert torch.allclose(features[0], open_clip_features(tiny_model.clip, astronaut), atol=1e-6)
    assert torch.allclose(features[1], open_clip_features(tiny_model.clip, wide), atol=1e-6)


def test_a_one_pixel_strip_is_cropped_to_its_middle_before_scaling(tiny_model):
    strip = np.zeros((1, 1280, 3), np.uint8)
    strip[0, 632:648] = 255  # only the middle 16 pixels are white
    features = encode_images(tiny_model.clip, [strip, strip.transpose(1, 0, 2)])
    middle = Image.fromarray(np.full((1, int(MAX_ASPECT), 3), 255, np.uint8))
    assert torch.allclose(features[0], open_clip_features(tiny_model.clip, middle), atol=1e-5)
    assert torch.allclose(features[1], open_clip_features(tiny_model.clip, middle.transpose(Image.Transpose.TRANSPOSE)),
                          atol=1e-5)
