"""CLIP image features for a list of frames (face crops or whole frames)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from merclip.clip.loader import ClipBundle

MAX_ASPECT = 16.0


def _central(image: Image.Image) -> Image.Image:
    """The middle of an extremely long or tall picture, at most MAX_ASPECT:1.

    CLIP's preprocessing scales the short side to its input size and keeps only the central
    square, so it sees the same part of the picture either way (resampled on a slightly
    different grid); the crop spares scaling a 1280 x 1 strip up to 286,720 x 224 pixels
    (190 MB) first. Ordinary frames are left exactly as they are.
    """
    width, height = image.size
    if max(width, height) <= MAX_ASPECT * min(width, height):
        return image
    if width > height:
        keep = round(MAX_ASPECT * height)
        return image.crop(((width - keep) // 2, 0, (width - keep) // 2 + keep, height))
    keep = round(MAX_ASPECT * width)
    return image.crop((0, (height - keep) // 2, width, (height - keep) // 2 + keep))


IMAGE_BATCH = 32


def encode_images(clip: ClipBundle, images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
    """(N, d) normalised image embeddings, with CLIP's own preprocessing, in batches of IMAGE_BATCH
    (a long clip's 240 frames in one batch would hold ~0.5 GB of activations at once)."""
    chunks = []
    for start in range(0, len(images), IMAGE_BATCH):
        pil = [image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
               for image in images[start:start + IMAGE_BATCH]]
        batch = torch.stack([clip.preprocess(_central(image.convert("RGB"))) for image in pil])
        with torch.no_grad():
            chunks.append(clip.model.encode_image(batch.to(clip.device, clip.dtype), normalize=True).float())
    return torch.cat(chunks)
