"""The readout's interaction features and running mean (issue 28, item 4): what a checkpoint from before
them still does, and when the running mean moves. That the head learns an interaction is in test_learning."""

import copy
import json
from dataclasses import replace

import numpy as np
import torch

from merclip import load_model
from merclip.api import MerClip, build_head
from merclip.head.checkpoint import CONFIG_FILE, save_checkpoint
from merclip.head.inputs import batch_of
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates

TINY = "merclip-tiny:random"
LABELS = "joy, sorrow, rage"


def _trained_looking(head):
    """Random readout weights: a head whose decoder term is not zero, as after training."""
    with torch.no_grad():
        head.readout.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    return head


def test_a_checkpoint_from_before_interaction_features_loads_with_its_linear_readout(tiny_model, faces,
                                                                                   random_audio_features, tmp_path):
    """Its config.json has no `interaction_features` and its readout is d x d: it loads as it was trained."""
    old = _trained_looking(build_head(replace(tiny_model.config, interaction_features=0)))
    save_checkpoint(tmp_path, old, old.config)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert "interaction_features" not in config, "written as before the field, so older readers open it too"

    loaded = load_model(TINY, checkpoint=tmp_path, device="cpu")
    assert loaded.config.interaction_width == 0
    features = tiny_model.features(images=faces[:2], transcript="what a day", audio=random_audio_features)
    expected = MerClip(tiny_model.clip, old.eval()).score(features, LABELS)
    assert np.allclose(loaded.score(features, LABELS).logits, expected.logits, atol=1e-5)
    assert not np.allclose(expected.logits, tiny_model.score(features, LABELS).logits, atol=1e-2), "a real change"


def test_a_new_head_reads_interaction_features_of_the_evidence(tiny_model):
    head = build_head(tiny_model.config)
    width = tiny_model.config.embed_dim
    assert tiny_model.config.interaction_width == 2 * width
    assert head.readout.weight.shape == (width, 3 * width) and head.interaction.weight.shape == (2 * width, width)


def test_the_running_mean_moves_in_training_steps_only(tiny_model, faces, random_audio_features):
    """Inference must not change the model (two predictions of one clip are equal); a training step (grad
    enabled, train mode) moves the mean towards its batch's evidence."""
    head = _trained_looking(build_head(tiny_model.config))
    features = tiny_model.features(images=faces[:2], transcript="what a day", audio=random_audio_features)
    embeddings, _ = tiny_model.label_embeddings(parse_labels(LABELS), resolve_templates(None))
    batch, scale = features.as_batch(), tiny_model.clip.logit_scale

    before = head.evidence_mean.clone()
    head.eval()
    first = head(batch, embeddings, scale).logits
    head.train()
    with torch.no_grad():
        head(batch, embeddings, scale)
    assert torch.equal(head.evidence_mean, before) and int(head.mean_updates) == 0
    head.eval()
    assert torch.equal(head(batch, embeddings, scale).logits, first)

    head.train()
    head(batch, embeddings, scale).logits.sum().backward()
    assert int(head.mean_updates) == 1 and not torch.equal(head.evidence_mean, before)
    head.eval()
    assert not torch.equal(head(batch, embeddings, scale).logits, first), "inference reads the mean it tracked"


def test_a_samples_logits_do_not_depend_on_its_batch_mates(tiny_model, faces):
    """The same clip scored beside two different sets of batch mates (of other lengths, so the padding differs
    too) gives the same logits, in eval mode and in a training step. A training step first used the running
    mean it had just moved towards the batch's own mean, so each sample's logits moved with its mates
    (issue 33). The head is a trained-looking one with a running mean already tracked, as mid-training."""
    rng = np.random.default_rng(3)

    def clip(frames: int, seconds: int):
        audio = rng.standard_normal((seconds * 10, tiny_model.config.audio_feature_dim)).astype(np.float32)
        return tiny_model.features(images=faces[:frames], transcript="what a day " * seconds, audio=audio)

    sample, mates = clip(2, 2), [[clip(6, 5), clip(1, 1)], [clip(4, 9)]]
    embeddings, _ = tiny_model.label_embeddings(parse_labels(LABELS), resolve_templates(None))
    head = _trained_looking(build_head(tiny_model.config))
    with torch.no_grad():
        head.evidence_mean.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        head.mean_updates.fill_(20)
    for training in (False, True):
        logits = []
        for others in mates:
            model = copy.deepcopy(head).train(training)  # the same state for both batches
            batch = batch_of([sample, *others])
            logits.append(model(batch, embeddings, tiny_model.clip.logit_scale).logits[0].detach())
            if training:
                assert int(model.mean_updates) == 21, "the training step did move the mean"
        assert torch.allclose(logits[0], logits[1], atol=1e-6, rtol=0), (training, logits)
