"""CH-SIMS scored as MMSA scores it (metricsTop.__eval_sims_regression), and its labels on its own scale."""

import json
import pickle

import numpy as np
import pytest

from merclip.errors import MerClipError
from merclip.labels import parse_labels
from train import evaluate as evaluate_module
from train.metrics import regression_metrics, sentiment_metrics, sims_metrics
from train.mmsa import load_mmsa

# SIMS-like scores in [-1, 1]; the first prediction lies outside and is clipped to -1 first
LABELS = [-1.0, -0.8, -0.6, -0.2, 0.0, 0.0, 0.2, 0.4, 0.8, 1.0]
PREDS = [-1.3, -0.5, -0.75, 0.05, -0.02, -0.05, 0.15, 0.9, 0.6, 0.72]


def test_sims_metrics_match_mmsa_definitions_by_hand():
    m = sims_metrics(PREDS, LABELS)
    # MMSA's classes, edges by hand: 2: <= 0 | > 0;  3: <= -.1 | (-.1, .1] | > .1;
    # 5: <= -.7 | (-.7, -.1] | (-.1, .1] | (.1, .7] | > .7
    labels_2, preds_2 = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 0, 0, 1, 1, 1, 1]
    labels_3, preds_3 = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    labels_5, preds_5 = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], [0, 1, 0, 2, 2, 2, 3, 4, 3, 4]
    assert m["mult_acc_2"] == pytest.approx(np.mean(np.equal(labels_2, preds_2))) == pytest.approx(0.9)
    assert m["mult_acc_3"] == pytest.approx(0.9)
    assert m["mult_acc_5"] == pytest.approx(np.mean(np.equal(labels_5, preds_5))) == pytest.approx(0.5)
    assert m["mult_acc_3"] == pytest.approx(np.mean(np.equal(labels_3, preds_3)))
    # weighted F1 of the two classes: class 0 (6 labels) P 5/5 R 5/6 -> 10/11; class 1 (4) P 4/5 R 1 -> 8/9
    assert m["f1"] == pytest.approx((6 * 10 / 11 + 4 * 8 / 9) / 10)
    # MAE and correlation of the clipped values: -1.3 counts as -1.0
    errors = [0.0, 0.3, 0.15, 0.25, 0.02, 0.05, 0.05, 0.5, 0.2, 0.28]
    assert m["mae"] == pytest.approx(np.mean(errors), abs=1e-6)
    clipped = [-1.0] + PREDS[1:]
    assert m["corr"] == pytest.approx(np.corrcoef(clipped, LABELS)[0, 1], abs=1e-6)
    assert m["n"] == 10


def test_mosi_formulas_collapse_on_sims_scores():
    """The issue's symptom: rounding leaves SIMS only -1, 0, 1, so MOSI's Acc-3, -5 and -7 are one number."""
    mosi = sentiment_metrics(PREDS, LABELS)
    assert mosi["acc3"] == mosi["acc5"] == mosi["acc7"]
    assert sims_metrics(PREDS, LABELS)["mult_acc_5"] != mosi["acc5"]
    assert regression_metrics(PREDS, LABELS, "sims") == sims_metrics(PREDS, LABELS)
    assert regression_metrics(PREDS, LABELS, "mosei") == mosi


def test_class_edges_compare_in_float32_as_mmsa_does():
    # float32(0.1) equals MMSA's edge 0.1 in float32, so it is "neutral" (-0.1, 0.1]; 0.2 is above it
    m = sims_metrics(np.float32([0.1, 0.1]), np.float32([0.1, 0.2]))
    assert m["mult_acc_3"] == pytest.approx(0.5)


def sims_pickle(path, text="我今天很开心"):
    rng = np.random.default_rng(0)
    data = {}
    for split, n in {"train": 6, "valid": 4, "test": 4}.items():
        data[split] = {"raw_text": np.array([text] * n), "audio": rng.standard_normal((n, 7, 3)).astype(np.float32),
                       "vision": rng.standard_normal((n, 5, 4)).astype(np.float32),
                       "regression_labels": np.round(rng.uniform(-1, 1, n), 1).astype(np.float32),
                       "audio_lengths": np.full(n, 7), "vision_lengths": np.full(n, 5)}
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return path


def test_sims_pickle_gets_sims_anchors_metrics_and_a_chinese_text_warning(tiny_model, tmp_path, capsys):
    path = sims_pickle(tmp_path / "sims.pkl")
    data = load_mmsa(path, tiny_model.clip, show_progress=False)
    assert data.source["dataset"] == "sims"
    anchors = parse_labels(data.labels).anchors
    assert min(anchors) == -1 and max(anchors) == 1, "predicted scores must live on SIMS's scale"
    assert "raw_text is Chinese" in capsys.readouterr().err
    report_path = tmp_path / "report.json"
    assert evaluate_module.main(["--zero-shot", "--clip", "merclip-tiny:random", "--data", str(path), "--format",
                                 "mmsa", "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["dataset"] == "sims" and {"mult_acc_2", "mult_acc_3", "mult_acc_5", "f1"} <= set(report)
    assert "acc7" not in report


def test_naming_sims_for_mosi_scores_is_refused(tiny_model, tmp_path):
    path = sims_pickle(tmp_path / "mosi.pkl", text="what a day")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    data["test"]["regression_labels"][0] = 2.6
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    assert load_mmsa(path, tiny_model.clip, show_progress=False).source["dataset"] == "mosi"
    with pytest.raises(MerClipError, match=r"outside CH-SIMS's \[-1, 1\]"):
        load_mmsa(path, tiny_model.clip, show_progress=False, dataset="sims")
