"""Planted signals (train/planted.py) are learned with default options within the default epochs.

Tiny random CLIP on the CPU; MMSA cases have CMU-MOSI's layout with 80/20/40 samples, the
video case 80 clips (48/16/16) of real pictures through `train.extract`. Training is
seeded (initialisation and batch order), so each figure is the same on every run.
"""

from dataclasses import replace

import numpy as np
import pytest

from train import interactions
from train.learning import SIZES, TINY, VIDEO_SIZES, run_case, video_features
from train.planted import MMSA_CASES, write_mmsa

pytestmark = pytest.mark.slow


def trained_on(case: str, folder):
    path, carried = write_mmsa(folder / "data.pkl", MMSA_CASES[case], SIZES["small"])
    return run_case(case, path, "mmsa", carried, folder / "run", TINY)


@pytest.mark.parametrize("case", ["text", "audio", "vision"])
def test_a_signal_carried_by_one_modality_is_learned(tmp_path, case):
    outcome = trained_on(case, tmp_path)
    assert outcome.trained > 0.6 and outcome.trained > outcome.zero_shot + 0.3, outcome
    assert outcome.steps_to_half is not None and outcome.steps_to_half <= 30, "within the first epochs (3 steps each)"


def test_attention_after_training_sits_on_the_words_that_carry_the_signal(tmp_path):
    outcome = trained_on("text, 3 of 20 words", tmp_path)
    assert outcome.attention_share["text"] >= 2.0, outcome


def test_attention_finds_the_few_cued_frames_that_carry_a_frame_local_interaction(tmp_path):
    """Frame-local sign x sign (train/interaction_cases.py): the voice's sign in 5 of 50 frames and the face's
    in 2 of 8, at another time, each marked by a cue. Pooling dilutes them; after training the audio and vision
    stages attend to the carrying frames (issue 33, 5 seeds at 1284 samples: audio 5.2x, vision 2.2x uniform,
    test corr .525 against .383 for the best pooled learner). This replaced 'audio, 1 s of 5 s' at 80 samples
    here: audio stages now start near a plain mean (merclip.head.network.ADAPTED_TEMPERATURE) and that case's signal
    (a large feature on 10 of 50 frames) is read through the adapter's per-frame normalisation without focusing
    (corr .92, attention 1.03x; it was .87 at 2.2x when the stage started at CLIP's sharp temperature, which
    left this case at corr .02). Test split cut to 300 samples: the attention figure scores each one."""
    splits = interactions.draw("frame-local sign x sign", 1284, 0)
    test = splits["test"]
    splits["test"] = replace(test, audio=test.audio[:300], vision=test.vision[:300], scores=test.scores[:300],
                             oracle=test.oracle[:300], carried=test.carried[:300])
    carried = interactions.write_pickle(tmp_path / "data.pkl", splits)
    outcome = run_case("frame-local", tmp_path / "data.pkl", "mmsa", carried, tmp_path / "run", TINY)
    assert outcome.trained >= 0.4, outcome
    assert outcome.attention_share["audio"] >= 2.0 and outcome.attention_share["vision"] >= 1.5, outcome


def test_a_class_shown_in_2_of_8_video_frames_is_learned_and_attended(tmp_path):
    """The raw-video route, at the size a researcher brings: 80 clips, 20 epochs at default options."""
    features, carried = video_features(tmp_path, VIDEO_SIZES["small"], TINY)
    outcome = run_case("video", features, "manifest", carried, tmp_path / "run", TINY)
    assert outcome.trained >= 0.9 and outcome.zero_shot <= 0.7, outcome
    # 1.9-2.0x over 3 seeds with the interaction readout, which reaches a near-zero loss by epoch 9 (the linear
    # readout before it needed sharper attention, 3.8x, and 20 epochs); uniform would be 1.0x
    assert outcome.attention_share["vision"] >= 1.5, outcome
    assert outcome.trained_stages == ("vision",), "the clips have no sound and no transcript: only vision trained"
    assert len(outcome.epoch_scores) == 20 and outcome.kept_vs_best >= -0.05, outcome


def test_fusion_needs_both_the_words_and_the_voice(tmp_path):
    """The words give the score's sign, the voice its size: over 3 seeds, the three-modality model beats the same
    model trained without either. 300 training samples. One seed is not enough to tell at this size: with two
    torch threads seed 0 gave 0.676 with both and 0.702 from the words alone (one thread: 0.731 and 0.654);
    the means over seeds 0-2 were 0.755 / 0.633 (two threads) and 0.763 / 0.655 (one)."""
    path, carried = write_mmsa(tmp_path / "fusion.pkl", MMSA_CASES["fusion: sign in words, size in voice"],
                               {"train": 300, "valid": 60, "test": 100})
    corr = {stages: np.mean([run_case("fusion", path, "mmsa", carried, tmp_path / f"{stages or 'all'}-{seed}", TINY,
                                      stages, seed).trained for seed in (0, 1, 2)])
            for stages in ("", "audio,vision", "text,vision")}
    assert corr[""] > max(corr["audio,vision"], corr["text,vision"]) + 0.05, corr


def test_a_product_of_voice_and_face_is_learned(tmp_path):
    """xor: the score is the product of a voice feature's sign and a face feature, so neither modality alone says
    anything about its sign (sarcasm's shape). A readout that only sums per-modality evidence stays a constant
    predictor here (corr -0.12 before the interaction features); 300 training samples, seeds 0-2 gave
    0.94/0.94/0.85, ridge on degree-2 features of the pooled inputs 0.86."""
    path, carried = write_mmsa(tmp_path / "xor.pkl", MMSA_CASES["xor: sign of voice x sign of face"],
                               {"train": 300, "valid": 60, "test": 100})
    outcome = run_case("xor", path, "mmsa", carried, tmp_path / "run", TINY)
    assert outcome.trained >= 0.8 and abs(outcome.zero_shot) < 0.3, outcome
    assert outcome.trained_stages is not None and {"audio", "vision"} <= set(outcome.trained_stages)
