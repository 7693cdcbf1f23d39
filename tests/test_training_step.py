"""A few optimiser steps on a toy batch: the readout and gates learn, loss falls, frozen CLIP stays frozen."""

import torch
import torch.nn.functional as F

from merclip.api import build_head
from merclip.head.inputs import ModalityInput
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates
from train.resume import load_training_state, save_training_state
from train.train import TEMPERATURE_LR_SCALE, parameter_groups


def test_optimiser_steps_train_the_head_and_leave_clip_unchanged(tiny_model, faces):
    torch.manual_seed(0)
    clip = tiny_model.clip
    head = build_head(tiny_model.config).train()
    clip_before = {k: v.clone() for k, v in clip.model.state_dict().items()}
    gates_before = {n: p.item() for n, p in head.named_parameters() if n.endswith("gate")}
    assert not head.readout.weight.any(), "the readout starts at zero (the untrained model is CLIP zero-shot)"

    vision = tiny_model.encode_images(faces)  # 6 real faces: 6 one-frame samples
    batch_size = 6
    inputs = {
        "vision": ModalityInput(vision[:, None, :], torch.ones(batch_size, 1, dtype=torch.bool)),
        "audio": ModalityInput(
            torch.randn(batch_size, 10, tiny_model.config.audio_feature_dim), torch.ones(batch_size, 10, dtype=torch.bool)
        ),
    }
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    embeddings, _ = tiny_model.label_embeddings(parse_labels("joy, sorrow, rage"), resolve_templates(None))
    optimiser = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=1e-2)

    losses = []
    for _ in range(30):
        loss = F.cross_entropy(head(inputs, embeddings, clip.logit_scale).logits, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())

    assert losses[-1] < 0.8 * losses[0], losses
    gates_after = {n: p.item() for n, p in head.named_parameters() if n.endswith("gate")}
    assert head.readout.weight.any()
    assert any(gates_after[n] != gates_before[n] for n in gates_after if n.startswith("decoder.stages"))
    for name, value in clip.model.state_dict().items():
        assert torch.equal(value, clip_before[name]), name
    assert all(p.grad is None for p in clip.model.parameters())


def test_attention_temperatures_learn_at_their_own_scale_without_weight_decay(tiny_model):
    """Adam moves each weight by about the learning rate per step: a temperature at the plain rate could not
    sharpen an adapted stage's attention within a run (train.train's TEMPERATURE_LR_SCALE)."""
    head = build_head(tiny_model.config)
    rest, temperatures = parameter_groups(head)
    assert [id(p) for p in temperatures["params"]] == [id(s.log_tau) for s in head.decoder.stages.values()]
    assert temperatures["lr_scale"] == TEMPERATURE_LR_SCALE > 1 and temperatures["weight_decay"] == 0
    assert rest["lr_scale"] == 1 and "weight_decay" not in rest, "the other weights decay as configured"
    assert len(rest["params"]) + len(temperatures["params"]) == len([p for p in head.parameters() if p.requires_grad])


def test_a_run_saved_with_one_optimiser_group_resumes_with_its_moments_in_place(tiny_model, tmp_path):
    """Before issue 33 the optimiser had one group (every weight in `head.parameters()` order); a resumed run
    now has the temperatures in a group of their own. Each weight must get back its own Adam moments."""
    head = build_head(tiny_model.config)
    trainable = [p for p in head.parameters() if p.requires_grad]
    old = torch.optim.AdamW(trainable, lr=1e-3)
    for index, p in enumerate(trainable):
        p.grad = torch.full_like(p, float(index + 1))  # each weight's moments tell which weight it is
    old.step()
    save_training_state(tmp_path, head, tiny_model.config, old, {"epoch": 1})
    new = torch.optim.AdamW(parameter_groups(head), lr=1e-3)
    assert load_training_state(tmp_path, head, new) == {"epoch": 1}
    for index, p in enumerate(trainable):
        assert torch.allclose(new.state[p]["exp_avg"], 0.1 * torch.full_like(p, float(index + 1))), index
    assert [g["lr_scale"] for g in new.param_groups] == [1.0, TEMPERATURE_LR_SCALE]
