"""Cross-modal decoder: attention at initialisation, missing modalities, stage order, masking."""

import math
from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from merclip import MerClipError
from merclip.api import MerClip, build_head
from merclip.head.config import ModelConfig
from merclip.head.decoder import OPEN_GATE, CrossModalStage
from merclip.head.inputs import ClipFeatures, ModalityInput
from merclip.head.network import ADAPTED_TEMPERATURE
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates

LABELS = "happy, sad, angry, calm"


@pytest.fixture
def all_features(tiny_model, faces, random_audio_features):
    return tiny_model.features(
        images=faces, frame_times=[0.5 * i for i in range(len(faces))],
        transcript="well I guess that went better than expected",
        audio=random_audio_features, audio_times=[0.05 * i for i in range(len(random_audio_features))],
    )


def test_attention_at_initialisation_is_softmax_of_scaled_cosine(tiny_model, all_features):
    """The first stage: softmax_t(tau * cos(E_k, x_t)). Each later stage asks the same with the label
    moved towards what the stages before it attended to (identity projections, gates open). tau is CLIP's
    1/0.07 where the elements are in CLIP's space (words, faces) and ADAPTED_TEMPERATURE for the audio
    adapter's untrained features, whose attention starts near a plain mean."""
    result = tiny_model.score(all_features, LABELS)
    embeddings, _ = tiny_model.label_embeddings(parse_labels(LABELS), resolve_templates(None))
    taus = {"text": tiny_model.config.attention_temperature, "audio": ADAPTED_TEMPERATURE,
            "vision": tiny_model.config.attention_temperature}
    with torch.no_grad():
        audio_elements = tiny_model.head.adapt("audio", all_features.audio)
    found = torch.zeros(4, embeddings["text"].shape[1])  # what earlier stages attended to, in CLIP space
    for modality, elements in (("text", all_features.text), ("audio", audio_elements), ("vision", all_features.vision)):
        cosine = F.normalize(embeddings[modality] + found, dim=-1) @ F.normalize(elements, dim=-1).T
        expected = (taus[modality] * cosine).softmax(dim=-1)
        stage = result.stage(modality)
        assert stage.attention.shape == (4, elements.shape[0])
        assert torch.allclose(torch.from_numpy(stage.attention), expected, atol=1e-5), modality
        found = found + math.tanh(OPEN_GATE) * expected @ elements
    assert [s.modality for s in result.stages] == ["text", "audio", "vision"]
    assert result.stage("vision").elements == all_features.frame_times
    assert result.stage("text").elements == all_features.words


@pytest.mark.parametrize(
    "subset", [c for n in (1, 2, 3) for c in combinations(("text", "audio", "vision"), n)], ids=str
)
def test_every_subset_of_modalities_predicts_and_says_what_it_used(tiny_model, all_features, subset):
    features = ClipFeatures(**{k: v for k, v in vars(all_features).items()})
    for modality in {"text", "audio", "vision"} - set(subset):
        setattr(features, modality, None)
    result = tiny_model.score(features, LABELS)
    assert result.modalities == list(subset)
    assert result.missing == [m for m in ("text", "audio", "vision") if m not in subset]
    assert [s.modality for s in result.stages] == list(subset)
    assert abs(sum(result.probs) - 1) < 1e-5
    assert set(result.prior_weights) == set(subset) - {"audio"}
    if set(result.prior_weights):
        assert abs(sum(result.prior_weights.values()) - 1) < 1e-6
    else:
        assert any("equally likely" in w for w in result.warnings)


def test_no_modality_at_all_is_a_clear_error(tiny_model):
    with pytest.raises(MerClipError, match="nothing to analyse"):
        tiny_model.score(ClipFeatures(), LABELS)


def test_stage_order_is_configurable(tiny_model, all_features):
    config = ModelConfig(clip=tiny_model.config.clip, embed_dim=128, stage_order=("vision", "text"))
    reordered = MerClip(tiny_model.clip, build_head(config))
    result = reordered.score(all_features, LABELS)
    assert [s.name for s in result.stages] == ["stage 1: vision", "stage 2: text"]
    assert result.modalities == ["vision", "text"] and result.missing == []


def test_padding_and_missing_samples_in_a_batch_do_not_change_results(tiny_model, all_features):
    """Sample 0 is the clip; sample 1 lacks text. Each must score as if it were alone."""
    torch.manual_seed(0)
    head = build_head(tiny_model.config)
    head.readout.weight.data.normal_(0, 0.1)  # so the decoder path matters
    embeddings, _ = tiny_model.label_embeddings(parse_labels(LABELS), resolve_templates(None))
    scale = tiny_model.clip.logit_scale
    alone = all_features.as_batch()
    no_text = {m: x for m, x in alone.items() if m != "text"}

    def padded(modality, extra):
        x = alone[modality]
        elements = torch.cat([x.elements, torch.randn(1, extra, x.elements.shape[-1])], dim=1)
        mask = torch.cat([x.mask, torch.zeros(1, extra, dtype=torch.bool)], dim=1)
        return elements, mask

    batch = {}
    for modality in alone:
        elements, mask = padded(modality, 3)
        pooled = None if alone[modality].pooled is None else alone[modality].pooled.repeat(2, 1)
        second_mask = mask.clone() if modality != "text" else torch.zeros_like(mask)
        batch[modality] = ModalityInput(elements.repeat(2, 1, 1), torch.cat([mask, second_mask]), pooled)
    with torch.no_grad():
        together = head(batch, embeddings, scale)
        first = head(alone, embeddings, scale)
        second = head(no_text, embeddings, scale)
    assert torch.allclose(together.logits[0], first.logits[0], atol=1e-5)
    assert torch.allclose(together.logits[1], second.logits[0], atol=1e-5)
    assert torch.all(together.attentions["text"][1] == 0)
    assert torch.all(together.attentions["vision"][:, :, -3:] == 0)


def test_prepared_clips_score_as_fresh_ones_without_recomputing_keys_and_values(tiny_model, all_features,
                                                                                 monkeypatch):
    """What a re-score keeps (checked, batched clips and each stage's keys and values) gives the
    same result as scoring from scratch, for any labels, with a trained head."""
    torch.manual_seed(0)
    head = build_head(tiny_model.config)
    head.readout.weight.data.normal_(0, 0.1)
    for stage in head.decoder.stages.values():
        stage.key.weight.data.add_(0.05 * torch.randn_like(stage.key.weight))
        stage.value.weight.data.add_(0.05 * torch.randn_like(stage.value.weight))
    model = MerClip(tiny_model.clip, head)
    short = ClipFeatures(vision=all_features.vision[:2], frame_times=all_features.frame_times[:2])
    clips = [all_features, short]
    prepared = model.prepare(clips)
    monkeypatch.setattr(CrossModalStage, "memory", lambda *a: pytest.fail("keys and values computed again"))
    for labels in (LABELS, "proud, bored, tense"):
        kept = model.score_many(prepared, labels)
        monkeypatch.undo()
        fresh = model.score_many(clips, labels)
        monkeypatch.setattr(CrossModalStage, "memory", lambda *a: pytest.fail("keys and values computed again"))
        for a, b in zip(kept, fresh):
            assert a.labels == b.labels and a.modalities == b.modalities
            assert a.probs == pytest.approx(b.probs, abs=1e-6)
            for sa, sb in zip(a.stages, b.stages):
                assert np.allclose(sa.attention, sb.attention, atol=1e-6)
    assert kept[0].modalities == ["text", "audio", "vision"] and kept[1].modalities == ["vision"]


def test_a_closed_mlp_gate_is_skipped_only_where_nothing_learns_from_it(tiny_model, all_features):
    """At inference a stage whose MLP gate is exactly 0 skips its MLP (same result); in training the
    gate's gradient goes through the MLP, so it must run, or the gate could never open."""
    head = build_head(tiny_model.config).eval()  # eval: the gradient flows, the readout's running mean stays
    embeddings, _ = tiny_model.label_embeddings(parse_labels(LABELS), resolve_templates(None))
    batch, scale = all_features.as_batch(), tiny_model.clip.logit_scale
    head.readout.weight.data.normal_(0, 0.1)
    ran = []
    for stage in head.decoder.stages.values():
        stage.mlp.register_forward_hook(lambda *_: ran.append(1))
    with torch.no_grad():
        skipped = head(batch, embeddings, scale).logits
    assert not ran, "closed gates at inference: no MLP runs"
    head(batch, embeddings, scale).logits.sum().backward()
    assert len(ran) == 3
    assert all(stage.mlp_gate.grad is not None and stage.mlp_gate.grad != 0 for stage in head.decoder.stages.values())
    with torch.no_grad():
        for stage in head.decoder.stages.values():
            stage.mlp_gate.fill_(1e-30)  # open by a hair: the MLP runs, and adds (almost) nothing
        run = head(batch, embeddings, scale).logits
    assert torch.allclose(skipped, run, atol=1e-6)


def test_without_attention_every_stage_reads_the_plain_mean_of_its_elements(tiny_model, all_features):
    """The ablation of `python -m train.interactions` (`train.train --no-attention`): uniform weights over each
    stage's elements whatever the labels ask, and the config says so in its checkpoint (omitted when on, so
    older readers still open every other checkpoint)."""
    config = replace(tiny_model.config, attention=False)
    result = MerClip(tiny_model.clip, build_head(config)).score(all_features, LABELS)
    for stage in result.stages:
        count = stage.attention.shape[1]
        assert np.allclose(stage.attention, 1 / count, atol=1e-6), stage.modality
    assert ModelConfig.from_dict(config.to_dict()).attention is False
    assert "attention" not in tiny_model.config.to_dict()
    with pytest.raises(MerClipError, match="attention must be true or false"):
        ModelConfig.from_dict({**tiny_model.config.to_dict(), "attention": "no"})
