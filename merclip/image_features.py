"""CLIP image features for a list of frames (face crops or whole frames)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from merclip.clip_loader import ClipBundle


def encode_images(clip: ClipBundle, images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
    """(N, d) normalised image embeddings, with CLIP's own preprocessing, in one batch."""
    pil = [image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image)) for image in images]
    batch = torch.stack([clip.preprocess(image.convert("RGB")) for image in pil])
    with torch.no_grad():
        features = clip.model.encode_image(batch.to(clip.device, clip.dtype), normalize=True)
    return features.float()
