"""The interaction benchmark (`python -m train.interactions`): its generators' oracles are pinned, each
generator plants what its docstring says, and a run writes its table and JSON and resumes from saved cells."""

import json

import numpy as np
import pytest

from train import interactions
from train.baselines import baseline_scores
from train.interaction_cases import AUDIO_LEN, CUE, FACE_SPAN, GENERATORS, VISION_LEN, VOICE_SPAN, corr, pooled

# The oracle's test corr on each generator's 2000-sample test split of (size 80, seed 0). A change to a
# generator changes what every figure of the table means: it must show here.
ORACLES = {"xor": 0.981, "x^2": 0.962, "sign x sign": 0.783, "frame-local sign x sign": 0.756,
           "weak linear": 0.747, "null": 0.0}


def test_every_generator_is_pinned_by_its_oracle():
    assert set(ORACLES) == set(GENERATORS)
    for name, expected in ORACLES.items():
        test = interactions.draw(name, 80, 0)["test"]
        assert len(test.scores) == interactions.TEST_SIZE >= 2000
        assert corr(test.oracle, test.scores) == pytest.approx(expected, abs=0.002), name


def test_the_same_cell_draws_the_same_data_and_another_seed_other_data():
    first, again, other = (interactions.draw("sign x sign", 80, seed)["train"] for seed in (0, 0, 1))
    assert np.array_equal(first.audio, again.audio) and not np.array_equal(first.audio, other.audio)
    assert [len(s.scores) for s in interactions.draw("null", 80, 0).values()] == [80, 20, 2000]
    assert [len(s.scores) for s in interactions.draw("null", 400, 0).values()] == [400, 229, 2000]


def test_sign_x_sign_is_an_interaction_no_sum_of_modalities_reads():
    """Each modality alone (and any linear learner on both) says nothing of the score; their product does."""
    splits = interactions.draw("sign x sign", 1284, 0)
    data = [(pooled(splits[s]), splits[s].scores) for s in ("train", "valid", "test")]
    scores = baseline_scores(*data)
    assert abs(scores["ridge"]) < 0.06 and abs(scores["logistic"]) < 0.06, scores
    assert scores["logistic, degree 2"] > 0.5, scores


def test_frame_local_signs_live_in_a_few_cued_frames_at_different_times():
    split = interactions.draw("frame-local sign x sign", 80, 0)["train"]
    per_face = AUDIO_LEN / VISION_LEN
    rises = []
    for i, where in enumerate(split.carried):
        voice, face = where["audio"], where["vision"]
        assert len(voice) == VOICE_SPAN and len(face) == FACE_SPAN
        voice_time, face_time = (voice[0], voice[-1] + 1), (face[0] * per_face, (face[-1] + 1) * per_face)
        assert voice_time[1] <= face_time[0] or voice_time[0] >= face_time[1], "the two signs at different times"
        cue = split.audio[i, :, -1]
        rises.append(cue[voice].mean() - np.delete(cue, voice).mean())
    assert np.mean(rises) == pytest.approx(CUE, abs=0.3), "the voice-activity cue rises on the carrying frames"


def test_the_null_generators_scores_are_independent_of_its_features():
    splits = interactions.draw("null", 1284, 0)
    scores = baseline_scores(*((pooled(splits[s]), splits[s].scores) for s in ("train", "valid", "test")))
    assert all(abs(value) < 0.1 for value in scores.values()), scores


def test_a_run_resumes_from_its_saved_cells(tmp_path):
    """A saved cell is read, not trained again: the table shows what the file says."""
    cells = tmp_path / "cells"
    cells.mkdir()
    runs = {"corr": 0.5, "epoch_scores": [0.25, 0.5, 0.4], "kept_epoch": 2, "attention_share": {},
            "trained_stages": ["audio", "vision"], "seconds": 1.0}
    saved = {"generator": "null", "size": 80, "seed": 0, "oracle": 0.0, "seconds": 2.0,
             "settings": interactions.settings(None),
             **{name: 0.123 for name in interactions.LEARNERS},
             **{f"{name} run": runs for name in (interactions.HEAD, interactions.ABLATION)}}
    (cells / "null-80-s0.json").write_text(json.dumps(saved))
    assert interactions.main(["--out", str(tmp_path), "--generators", "null", "--sizes", "80", "--seeds", "1"]) == 0
    table = (tmp_path / "interactions.md").read_text()
    assert "| null | 80 / 20 / 2000 |" in table and "0.123 ± 0.000" in table
    row = json.loads((tmp_path / "interactions.json").read_text())[0]
    assert row["regret"]["kept"]["mean"] == 0.0 and row["regret"]["last"]["mean"] == pytest.approx(0.1)
    assert not (tmp_path / "work").exists(), "nothing was trained"


def test_a_cell_saved_under_other_settings_is_computed_again(tmp_path, monkeypatch):
    """A cell from before a default changed (here the learning rate) would mix two heads in one row."""
    (tmp_path / "cells").mkdir()
    stale = {"generator": "null", "size": 80, "seed": 0, "settings": {**interactions.settings(None), "lr": 1e-3}}
    (tmp_path / "cells" / "null-80-s0.json").write_text(json.dumps(stale))
    computed = []
    fresh = {"generator": "null", "oracle": 0.0, "seconds": 1.0, **{name: 0.0 for name in interactions.LEARNERS}}
    monkeypatch.setattr(interactions, "run_cell", lambda *args: computed.append(args) or dict(fresh))
    cells = interactions.run_grid(tmp_path, ["null"], [80], 1)
    assert len(computed) == 1 and cells[0]["settings"] == interactions.settings(None)
    assert json.loads((tmp_path / "cells" / "null-80-s0.json").read_text())["settings"]["lr"] == 5e-4


@pytest.mark.slow
def test_the_quick_run_fills_every_column_for_every_generator(tmp_path):
    """`--quick` (CI): every generator, every learner, a finite figure in each cell and runtimes."""
    assert interactions.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "interactions.json").read_text())
    assert [r["generator"] for r in rows] == list(GENERATORS)
    for row in rows:
        assert set(row["learners"]) == set(interactions.LEARNERS)
        assert all(np.isfinite(s["mean"]) for s in row["learners"].values()), row
        assert row["oracle"]["mean"] == pytest.approx(ORACLES[row["generator"]], abs=0.002)
        assert set(row["regret"]) == {"kept", "last", "fixed"} and row["seconds"] > 0
    table = (tmp_path / "interactions.md").read_text()
    assert table.count("\n| ") >= 2 * len(GENERATORS) + 2, "a learners row and a selection row per generator"
