"""CH-SIMS scored as MMSA scores it (metricsTop.__eval_sims_regression), and its labels on its own scale, when named:
`--dataset sims` (train.train, train.evaluate), never guessed from the label range (issue 33)."""

import json
import pickle
import shutil

import numpy as np
import pytest

from merclip.errors import MerClipError
from merclip.labels.parsing import parse_labels
from train import evaluate as evaluate_module
from train import train as train_module
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


def test_sims_pickle_named_sims_gets_sims_anchors_metrics_and_a_chinese_text_warning(tiny_model, tmp_path, capsys):
    path = sims_pickle(tmp_path / "sims.pkl")
    data = load_mmsa(path, tiny_model.clip, show_progress=False, dataset="sims")
    assert data.source["dataset"] == "sims"
    anchors = parse_labels(data.labels).anchors
    assert min(anchors) == -1 and max(anchors) == 1, "predicted scores must live on SIMS's scale"
    assert "raw_text is Chinese" in capsys.readouterr().err
    report_path = tmp_path / "report.json"
    assert evaluate_module.main(["--zero-shot", "--clip", "merclip-tiny:random", "--data", str(path), "--format",
                                 "mmsa", "--dataset", "sims", "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["dataset"] == "sims" and {"mult_acc_2", "mult_acc_3", "mult_acc_5", "f1"} <= set(report)
    assert "acc7" not in report


def mosi_range_pickle(path, split: str):
    """A SIMS-like pickle with one label of 2.6 in `split`: outside CH-SIMS's range, inside MOSI's."""
    sims_pickle(path, text="what a day")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    data[split]["regression_labels"][0] = 2.6
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return path


def test_naming_sims_for_mosi_scores_is_refused(tiny_model, tmp_path):
    path = mosi_range_pickle(tmp_path / "mosi.pkl", "test")
    assert load_mmsa(path, tiny_model.clip, show_progress=False).source["dataset"] == "mosi"
    with pytest.raises(MerClipError, match=r"outside CH-SIMS's \[-1, 1\]"):
        load_mmsa(path, tiny_model.clip, show_progress=False, dataset="sims")


@pytest.mark.parametrize("named", [None, "mosei"])
def test_labels_beyond_three_are_refused_for_mosi_and_mosei(tiny_model, tmp_path, named):
    path = sims_pickle(tmp_path / "wide.pkl", text="what a day")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    data["valid"]["regression_labels"][1] = -4.5
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    with pytest.raises(MerClipError, match=r"labels up to 4.5, outside MOSI's and MOSEI's \[-3, 3\]"):
        load_mmsa(path, tiny_model.clip, show_progress=False, dataset=named)


def test_labels_in_sims_range_are_not_guessed_to_be_sims(tiny_model, tmp_path):
    """Every label in [-1, 1] does not make a pickle CH-SIMS: unnamed, it is MOSI, for loading and for scoring."""
    path = sims_pickle(tmp_path / "mild.pkl", text="what a day")
    data = load_mmsa(path, tiny_model.clip, show_progress=False)
    assert data.source["dataset"] == "mosi" and max(parse_labels(data.labels).anchors) == 3
    report_path = tmp_path / "report.json"
    assert evaluate_module.main(["--zero-shot", "--clip", "merclip-tiny:random", "--data", str(path), "--format",
                                 "mmsa", "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["dataset"] == "mosi" and "acc7" in report and "mult_acc_5" not in report


# --- train.train --dataset -------------------------------------------------------------------------------------------

def train_flags(data, out, *extra):
    return ["--data", str(data), "--format", "mmsa", "--clip", "merclip-tiny:random", "--device", "cpu", "--epochs",
            "1", "--batch-size", "4", "--out", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def sims_data(tmp_path_factory):
    return sims_pickle(tmp_path_factory.mktemp("sims") / "sims.pkl")


@pytest.fixture(scope="module")
def trained_as(sims_data, tmp_path_factory):
    """The SIMS-range pickle trained with --dataset sims and with no --dataset: {name: OUT}."""
    runs = {"sims": tmp_path_factory.mktemp("named") / "run", "unnamed": tmp_path_factory.mktemp("unnamed") / "run"}
    assert train_module.main(train_flags(sims_data, runs["sims"], "--dataset", "sims")) == 0
    assert train_module.main(train_flags(sims_data, runs["unnamed"])) == 0
    return runs


def anchors_of(run):
    return parse_labels(json.loads((run / "train_config.json").read_text())["labels"]).anchors


def test_train_with_dataset_sims_trains_on_sims_anchors_and_records_it(trained_as):
    settings = json.loads((trained_as["sims"] / "train_config.json").read_text())
    assert settings["dataset"] == "sims"
    assert min(anchors_of(trained_as["sims"])) == -1 and max(anchors_of(trained_as["sims"])) == 1


def test_train_without_dataset_does_not_switch_to_sims(trained_as):
    settings = json.loads((trained_as["unnamed"] / "train_config.json").read_text())
    assert settings["dataset"] == "mosi" and max(anchors_of(trained_as["unnamed"])) == 3


def test_evaluate_scores_with_the_dataset_the_checkpoint_was_trained_on(trained_as, sims_data, tmp_path):
    for name, metric in (("sims", "mult_acc_5"), ("unnamed", "acc7")):
        report_path = tmp_path / f"{name}.json"
        assert evaluate_module.main(["--checkpoint", str(trained_as[name]), "--data", str(sims_data), "--format",
                                     "mmsa", "--out", str(report_path), "--device", "cpu"]) == 0
        report = json.loads(report_path.read_text())
        assert report["dataset"] == ("sims" if name == "sims" else "mosi") and metric in report, name
    mixed = ["--checkpoint", str(trained_as["sims"]), str(trained_as["unnamed"]), "--data", str(sims_data), "--format",
             "mmsa", "--out", str(tmp_path / "mixed.json"), "--device", "cpu"]
    assert evaluate_module.main(mixed) == 2, "checkpoints of two datasets share no metrics"
    assert evaluate_module.main(mixed + ["--dataset", "sims"]) == 0


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_train_refuses_sims_for_mosi_range_labels_in_one_line(tmp_path, capsys):
    path = mosi_range_pickle(tmp_path / "mosi.pkl", "train")
    capsys.readouterr()
    assert train_module.main(train_flags(path, tmp_path / "run", "--dataset", "sims")) == 2
    assert one_line_error(capsys) == (f"train.train: error: {path} has labels up to 2.6, outside CH-SIMS's [-1, 1]: "
                                      "is it MOSI or MOSEI?")
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_dataset_for_a_manifest_and_an_unknown_one(sims_data, tmp_path, capsys):
    flags = train_flags(sims_data, tmp_path / "run")
    manifest = flags[:flags.index("mmsa")] + ["manifest"] + flags[flags.index("mmsa") + 1:]
    assert train_module.main(manifest + ["--dataset", "sims"]) == 2
    assert one_line_error(capsys) == "train.train: error: --dataset applies to --format mmsa only, not manifest"
    assert train_module.main(flags + ["--dataset", "imdb"]) == 2
    assert one_line_error(capsys) == "train.train: error: --dataset imdb: expected one of mosi, mosei, sims"
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {sims_data}\nformat: mmsa\ndataset: sims\nclip: merclip-tiny:random\nepochs: 1\n"
                      f"batch_size: 4\nout: {tmp_path / 'cfg'}\nprogress: false\ndevice: cpu\n")
    assert train_module.main(["--config", str(config)]) == 0, "the config file sets it too"
    assert json.loads((tmp_path / "cfg" / "train_config.json").read_text())["dataset"] == "sims"


def test_evaluate_reads_sims_from_an_older_runs_recorded_anchors(trained_as, sims_data, tmp_path):
    """A run from before train.train recorded its dataset wrote CH-SIMS's anchors as its labels: that record,
    not the data's label range, says it is CH-SIMS."""
    old = tmp_path / "old"
    shutil.copytree(trained_as["sims"], old)
    settings = json.loads((old / "train_config.json").read_text())
    del settings["dataset"]
    (old / "train_config.json").write_text(json.dumps(settings))
    report_path = tmp_path / "old.json"
    assert evaluate_module.main(["--checkpoint", str(old), "--data", str(sims_data), "--format", "mmsa",
                                 "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["dataset"] == "sims" and "mult_acc_5" in report
