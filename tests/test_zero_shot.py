"""Invariant: the untrained model on one image is exactly open_clip's zero-shot classifier."""

import pytest
import torch
from open_clip import build_zero_shot_classifier

from merclip import load_model

LABELS = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "neutral"]
TEMPLATES = ["a photo of a {} looking face.", "a face showing {}.", "a close-up photo of someone feeling {}."]


def _assert_zero_shot_exact(model, image):
    clip = model.clip
    classifier = build_zero_shot_classifier(clip.model, clip.tokenizer, LABELS, TEMPLATES, device=clip.device)
    with torch.no_grad():
        image_features = clip.model.encode_image(clip.preprocess(image)[None].to(clip.device), normalize=True)
    expected = (clip.logit_scale * image_features @ classifier).softmax(dim=-1)[0]

    result = model.score(model.features(images=[image]), LABELS, templates={"vision": TEMPLATES})

    assert result.modalities == ["vision"]
    assert torch.allclose(torch.tensor(result.probs), expected.float().cpu(), atol=1e-4)
    assert result.top_label == LABELS[int(expected.argmax())]


def test_tiny_model_equals_open_clip_zero_shot(tiny_model, astronaut):
    _assert_zero_shot_exact(tiny_model, astronaut)


@pytest.mark.slow
def test_full_size_vit_b_32_equals_open_clip_zero_shot(astronaut):
    _assert_zero_shot_exact(load_model("ViT-B-32:random", device="cpu"), astronaut)


def test_the_old_method_names_still_score_and_say_their_new_names(tiny_model, astronaut):
    """`predict`/`predict_many` were renamed `score`/`score_many` (issue 36): kept one release, with a warning."""
    features = tiny_model.features(images=[astronaut])
    with pytest.warns(DeprecationWarning, match="MerClip.score$"):
        old = tiny_model.predict(features, LABELS)
    with pytest.warns(DeprecationWarning, match="MerClip.score_many"):
        (old_many,) = tiny_model.predict_many([features], LABELS)
    assert old.probs == tiny_model.score(features, LABELS).probs == old_many.probs
