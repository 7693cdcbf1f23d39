"""`--seed` draws the initialisation too (issue 28, item 2); an untrained model is still the same everywhere and
exactly CLIP zero-shot whatever the seed."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from merclip import load_model
from merclip.api import MerClip, build_head
from merclip.head.checkpoint import read_checkpoint_config
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates
from tests.synthetic import write_mmsa
from train import train as train_module

TINY = "merclip-tiny:random"
RANDOM_PARTS = ("audio_adapter.0.weight", "decoder.stages.text.mlp.0.weight", "decoder.stages.vision.mlp.2.weight",
                "interaction.weight")


def test_two_seeds_give_two_initialisations_and_one_seed_one(tiny_model):
    a, b, again = (build_head(tiny_model.config, seed=s).state_dict() for s in (0, 1, 0))
    for name in RANDOM_PARTS:
        assert not torch.equal(a[name], b[name]), name
    assert all(torch.equal(a[name], again[name]) for name in a)
    assert all(torch.equal(a[name], b[name]) for name in ("readout.weight", "readout.bias")), "zero for every seed"


def test_building_a_head_leaves_the_global_random_state_alone(tiny_model):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_head(tiny_model.config, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_an_untrained_model_is_seed_0_everywhere(tiny_model):
    fresh = build_head(tiny_model.config).state_dict()
    assert all(torch.equal(value, fresh[name]) for name, value in load_model(TINY, device="cpu").head.state_dict().items())


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_every_seed_starts_exactly_at_clip_zero_shot(tiny_model, faces, random_audio_features, seed):
    model = MerClip(tiny_model.clip, build_head(tiny_model.config, seed=seed))
    features = tiny_model.features(images=faces[:2], transcript="what a day", audio=random_audio_features)
    labels = "joy, sorrow, rage"
    ours, zero_shot = model.score(features, labels), tiny_model.score(features, labels)
    # equal up to float rounding (the two models' forwards may be batched differently); the decoder's own
    # term is checked exactly below
    assert np.allclose(ours.logits, zero_shot.logits, rtol=0, atol=1e-5)
    assert np.allclose(ours.probs, zero_shot.probs, rtol=0, atol=1e-6)
    embeddings, _ = tiny_model.label_embeddings(parse_labels(labels), resolve_templates(None))
    out = model.head(features.as_batch(), embeddings, tiny_model.clip.logit_scale)
    assert not out.decoder_term.any(), "the readout starts at zero: the decoder adds exactly nothing"


def test_training_starts_from_its_seeds_initialisation(tmp_path):
    """With lr 0 nothing moves, so OUT/last holds the initialisation training used: seed S's, not always seed 0's."""
    data = write_mmsa(tmp_path / "mosi.pkl", {"train": 8, "valid": 4, "test": 4})
    heads = {}
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        assert train_module.main(["--data", str(data), "--clip", TINY, "--device", "cpu", "--epochs", "1", "--lr", "0",
                                  "--seed", str(seed), "--out", str(out), "--no-progress"]) == 0
        heads[seed] = load_file(str(out / "last" / "model.safetensors"))
    assert not torch.equal(heads[0]["audio_adapter.0.weight"], heads[1]["audio_adapter.0.weight"])
    for seed, weights in heads.items():
        # the weights; the readout's running mean of the evidence (a buffer) follows the batches even at lr 0
        fresh = dict(build_head(read_checkpoint_config(tmp_path / f"s{seed}" / "last"), seed=seed).named_parameters())
        assert all(torch.equal(weights[name], fresh[name]) for name in fresh), seed
