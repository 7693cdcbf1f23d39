"""train/: MMSA and manifest data, training, exact resume, DDP, evaluation and metrics (tiny CLIP, CPU)."""

import csv
import json
import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from merclip import load_model
from merclip.commands.cli import main as merclip_main
from merclip.media.sample_media import face_frames, speech_track, write_clip
from tests.app_server import free_port
from tests.synthetic import write_mmsa
from train import evaluate as evaluate_module
from train import extract as extract_module
from train import train as train_module
from train.config import TrainConfig
from train.data import FeatureSet
from train.manifest import load_extracted
from train.metrics import classification_metrics, sentiment_metrics
from train.mmsa import load_mmsa
from train.scoring import Scorer
from train.train import TEMPERATURE_LR_SCALE

ROOT = Path(__file__).resolve().parents[1]
TINY = "merclip-tiny:random"


def flags(data, out, *extra, epochs=3, data_format="mmsa"):
    return ["--data", str(data), "--format", data_format, "--clip", TINY, "--device", "cpu", "--epochs", str(epochs),
            "--seed", "0", "--out", str(out), "--no-progress", "--batch-size", "16", *extra]


def log_rows(out):
    with open(out / "log.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def mmsa(tmp_path_factory):
    return write_mmsa(tmp_path_factory.mktemp("mmsa") / "mosi_unaligned.pkl")


@pytest.fixture(scope="module")
def trained(mmsa, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mosi"
    assert train_module.main(flags(mmsa, out, epochs=6)) == 0
    return out


# --- metrics ---------------------------------------------------------------------------------------------------------

def test_sentiment_metrics_match_hand_computed_values():
    labels = [-2.0, -0.4, 0.0, 0.0, 1.2, 2.6, 3.4]
    preds = [-1.6, 0.3, -0.2, 0.6, 0.4, 3.8, 2.4]
    m = sentiment_metrics(preds, labels)
    # has-0: label >= 0 -> [F,F,T,T,T,T,T], pred >= 0 -> [F,T,F,T,T,T,T]: 5 of 7 right
    assert m["acc2_has0"] == pytest.approx(5 / 7)
    # non-0 drops the two zero labels: labels > 0 [F,F,T,T,T], preds > 0 [F,T,T,T,T]: 4 of 5
    assert m["acc2_non0"] == pytest.approx(4 / 5)
    # weighted F1 non-0: class False (support 2): P 1/1, R 1/2 -> 2/3; class True (support 3): P 3/4, R 1 -> 6/7
    assert m["f1_non0"] == pytest.approx((2 * 2 / 3 + 3 * 6 / 7) / 5)
    # acc7 rounds after clipping to [-3, 3]: labels [-2,-0,0,0,1,3,3] vs preds [-2,0,-0,1,0,3,2] -> 4 of 7
    assert m["acc7"] == pytest.approx(4 / 7)
    # acc3 clips to [-1, 1]: labels [-1,-0,0,0,1,1,1] vs preds [-1,0,-0,1,0,1,1] -> 5 of 7
    assert m["acc3"] == pytest.approx(5 / 7)
    assert m["mae"] == pytest.approx(np.mean(np.abs(np.array(preds) - labels)))
    assert m["corr"] == pytest.approx(np.corrcoef(preds, labels)[0, 1])
    assert m["n"] == 7 and all(0 <= m[k] <= 1 for k in ("acc2_has0", "acc5", "acc7"))


def test_rounding_ties_and_constant_predictions():
    m = sentiment_metrics([0.5, -0.5, 2.5], [0.0, 0.0, 2.0])
    assert m["acc7"] == pytest.approx(1.0), "numpy rounds half to even, as the MMSA toolkit does"
    assert m["acc2_non0"] == pytest.approx(1.0)  # the one non-zero label (2.0) is predicted positive
    assert np.isnan(sentiment_metrics([1.0, 1.0], [0.5, -0.5])["corr"])


def test_classification_metrics():
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["uar"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5]
    assert m["f1_weighted"] == pytest.approx(np.mean(f1))


# --- MMSA ------------------------------------------------------------------------------------------------------------

def test_mmsa_loader_cleans_infinities_and_honours_lengths(mmsa, tiny_model):
    data = load_mmsa(mmsa, tiny_model.clip, show_progress=False)
    with open(mmsa, "rb") as handle:
        raw = pickle.load(handle)["train"]
    first = data.split("train")[0]
    assert first.features.audio.shape == (raw["audio_lengths"][0], 5)
    assert first.features.vision.shape == (raw["vision_lengths"][0], 20)
    assert torch.isfinite(first.features.audio).all()
    assert first.features.words == str(raw["raw_text"][0]).split()
    assert (data.task, data.audio_dim, data.vision_dim) == ("regression", 5, 20)
    assert len(data.split("valid")) == 16


def test_training_lowers_the_loss_and_writes_a_loadable_checkpoint(trained, mmsa, tiny_model, tmp_path, capsys):
    rows = log_rows(trained)
    assert len(rows) == 6
    assert float(rows[-1]["train_loss"]) < 0.8 * float(rows[0]["train_loss"])
    assert {p.name for p in trained.iterdir()} >= {"model.safetensors", "config.json", "last", "log.csv",
                                                   "train_config.json"}
    # the checkpoint, loaded the way the app and the CLI load it, reproduces training's best validation MAE
    model = load_model(checkpoint=trained, device="cpu")
    data = load_mmsa(mmsa, model.clip, show_progress=False)
    labels = json.loads((trained / "train_config.json").read_text())["labels"]
    scorer = Scorer(model, labels, "regression")
    valid = data.split("valid")
    mae = sentiment_metrics(scorer.predict(model.head, valid), scorer.targets(valid))["mae"]
    kept = [r for r in rows if r["kept"] == "1"][-1]
    assert mae == pytest.approx(float(kept["valid_metric"]), abs=1e-5)
    assert mae == pytest.approx(float(kept["valid_loss"]), abs=1e-5), "for regression the loss (L1) is the MAE"
    assert float(kept["valid_loss"]) == min(float(r["valid_loss"]) for r in rows)
    # ...and the app's own prediction path gives the same score for a clip
    sample = data.split("test")[0]
    assert model.score(sample.features, labels).sentiment == pytest.approx(
        float(scorer.predict(model.head, [sample])[0]), abs=1e-5)
    # merclip predict loads it; video frames do not fit a head trained on Facet features, and it says so
    image = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(face_frames(1, 96)[0]).save(image)
    status = merclip_main(["predict", str(image), "--labels", labels, "--checkpoint", str(trained), "--device", "cpu",
                           "--transcript", "what a wonderful day", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and result["modalities"]["used"] == ["text"]
    assert any("vision stage is skipped" in w for w in result["warnings"])


def test_evaluation_report_has_the_field_metrics_and_a_zero_shot_row(trained, mmsa, tmp_path):
    report_path = tmp_path / "report.json"
    assert evaluate_module.main(["--checkpoint", str(trained), "--data", str(mmsa), "--format", "mmsa",
                                 "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    for key in ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr"):
        assert key in report and key in report["zero_shot"]
        assert key == "corr" or 0 <= report[key] <= 3
    assert report["n"] == 16 and report["split"] == "test"
    assert report["mae"] < report["zero_shot"]["mae"], "training must beat the untrained head on learnable data"
    markdown = report_path.with_suffix(".md").read_text()
    assert "| trained |" in markdown and "| zero-shot" in markdown


def test_seeds_aggregate_as_mean_and_std(trained, mmsa, tmp_path):
    other = tmp_path / "seed1"
    assert train_module.main(flags(mmsa, other, epochs=2) + ["--seed", "1"]) == 0
    report_path = tmp_path / "seeds.json"
    assert evaluate_module.main(["--checkpoint", str(trained), str(other), "--data", str(mmsa), "--format", "mmsa",
                                 "--out", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    maes = [run["mae"] for run in report["runs"]]
    assert report["mae"] == pytest.approx(np.mean(maes)) and report["std"]["mae"] == pytest.approx(np.std(maes))


def test_resuming_equals_training_straight_through(mmsa, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train_module.main(flags(mmsa, straight, epochs=4, data_format="mmsa") + ["--patience", "99"]) == 0
    assert train_module.main(flags(mmsa, resumed, epochs=4) + ["--patience", "99", "--stop-after", "2"]) == 0
    assert len(log_rows(resumed)) == 2
    assert train_module.main(flags(mmsa, resumed, epochs=4) + ["--patience", "99", "--resume"]) == 0
    assert len(log_rows(resumed)) == 4
    for name in ("last/model.safetensors", "model.safetensors"):  # where training ended, and the kept epoch
        a, b = load_file(str(straight / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
    columns = ("epoch", "step", "valid_loss", "valid_metric", "kept")
    assert [[r[c] for c in columns] for r in log_rows(straight)] == [[r[c] for c in columns] for r in log_rows(resumed)]
    assert json.loads((straight / "config.json").read_text()) == json.loads((resumed / "config.json").read_text())


def test_a_run_begun_before_the_interaction_features_resumes_with_its_linear_readout(mmsa, tmp_path, monkeypatch):
    """Its OUT/last/config.json has no `interaction_features` (as every config before them): resuming with
    today's code must go on with the readout it began with, not refuse its weights."""
    out = tmp_path / "old-run"
    with monkeypatch.context() as patch:
        made = FeatureSet.model_config
        patch.setattr(FeatureSet, "model_config", lambda self, clip: replace(made(self, clip), interaction_features=0))
        assert train_module.main(flags(mmsa, out, epochs=3) + ["--patience", "99", "--stop-after", "1"]) == 0
    assert "interaction_features" not in json.loads((out / "last" / "config.json").read_text())
    assert train_module.main(flags(mmsa, out, epochs=3) + ["--patience", "99", "--resume"]) == 0
    assert len(log_rows(out)) == 3
    weights = load_file(str(out / "last" / "model.safetensors"))
    assert weights["readout.weight"].shape[0] == weights["readout.weight"].shape[1] and "evidence_mean" not in weights


def test_config_file_and_flags(mmsa, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {mmsa}\nformat: mmsa\nclip: {TINY}\nepochs: 5\nbatch_size: 16\nout: {tmp_path / 'cfg'}\n"
                      "progress: false\ndevice: cpu\nlabel_augment: true\n")
    assert train_module.main(["--config", str(config), "--epochs", "1"]) == 0  # the flag wins over the file
    saved = json.loads((tmp_path / "cfg" / "train_config.json").read_text())
    assert saved["epochs"] == 1 and saved["label_augment"] is True and saved["batch_size"] == 16
    (tmp_path / "bad.yaml").write_text("epochz: 3\n")
    assert train_module.main(["--config", str(tmp_path / "bad.yaml")]) == 2


# --- video manifest: extract -> train -> evaluate ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    rows = ["path,split,label"]
    frames = face_frames(15, 128)
    for i in range(8):
        mood = "happy" if i % 2 == 0 else "sad"
        clip = [f if mood == "happy" else np.ascontiguousarray(f[::-1]) for f in frames]  # sad faces upside down
        write_clip(folder / f"clip{i}.mp4", clip, fps=15, audio=speech_track(1.0) * (1.0 if mood == "happy" else 0.3))
        rows.append(f"clip{i}.mp4,{['train', 'train', 'train', 'train', 'valid', 'valid', 'test', 'test'][i]},{mood}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def test_manifest_goes_through_extract_train_evaluate(manifest, tmp_path, capsys):
    features = tmp_path / "features"
    base = ["--manifest", str(manifest), "--out", str(features), "--clip", TINY, "--whisper", "none", "--device", "cpu"]
    assert extract_module.main(base + ["--shard", "0/2"]) == 0
    first_shard = {path.name for path in (features / "features").iterdir()}
    assert 0 < len(first_shard) < 8, "one of two shards takes some of the clips, not all or none"
    assert extract_module.main(base + ["--shard", "1/2"]) == 0
    assert len({path.name for path in (features / "features").iterdir()} - first_shard) == 8 - len(first_shard)
    capsys.readouterr()
    assert extract_module.main(base) == 0  # resumes: nothing left to do
    assert "8 of 8 clips of shard 0/1 already done" in capsys.readouterr().err
    data = load_extracted(features)
    assert data.task == "classification" and data.labels == "happy, sad" and len(data.samples) == 8
    assert data.samples[0].features.vision.shape == (8, 128)

    out = tmp_path / "run"
    assert train_module.main(flags(features, out, epochs=2, data_format="manifest")) == 0
    report = tmp_path / "report.json"
    assert evaluate_module.main(["--checkpoint", str(out), "--data", str(features), "--format", "manifest",
                                 "--out", str(report), "--device", "cpu"]) == 0
    result = json.loads(report.read_text())
    assert {"accuracy", "f1_weighted", "uar"} <= set(result) and result["n"] == 2
    assert extract_module.main(base[:-4] + ["--clip", "ViT-B-32:random", "--whisper", "none", "--device", "cpu"]) == 2


# --- DDP -------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(mmsa, tmp_path):
    """Two processes train the same head as one, up to the rounding that any change of reduction order brings.

    Why not bit for bit (measured on a 2-core AMD EPYC, issue 33): each rank's kernels see half the batch, and
    the gradient all-reduce and the running mean's all-reduce add in another order, so the gradients agree only
    to ~3e-6 relative at step 1. Adam scales every entry's update to about lr whatever its gradient's size, so
    an entry whose gradient is near zero (e.g. 7e-9 against a largest 7e-2) moves by up to a step either way
    on its rounding alone; later gradients inherit that. With the head of d7c93af (the running mean updated
    before centring), after 6 steps 8 of 483,338 weights were more than a tenth of a step apart (at most
    8.2e-4 = 0.82 lr) and the validation loss moved by 1.1e-5 (0.774871 against 0.77486): over the 1e-5 this
    test allowed. The same happens within one process: 1 thread against 2 gave 13 such weights, 1.4e-3 and
    1.6e-5. (The heads that centre on earlier batches' mean gave smaller gaps: at most 1 such weight.)
    So the bounds: every weight within two steps (2 lr), at most 0.01% of them more than a tenth of a step
    apart, the validation loss within 1e-4 at every epoch. A different model is far outside them (measured
    with each of those heads, lr 1e-3 and 5e-4): a rank-local running mean put 89,662 to 220,957 weights more
    than a tenth of a step apart (0.066 to 0.088 at most) and its worse epoch's loss 0.011 to 0.034 off; no
    gradient sync, or both ranks on the same half of each batch, over 440,000 weights and 0.06 to 0.19."""
    single, double = tmp_path / "single", tmp_path / "ddp"
    args = flags(mmsa, single, epochs=2) + ["--patience", "99"]
    assert train_module.main(args) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "train.train",
               *flags(mmsa, double, epochs=2), "--patience", "99"]
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert process.returncode == 0, process.stderr[-3000:]
    losses = [[float(row["valid_loss"]) for row in log_rows(out)] for out in (single, double)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4), "the same model, epoch by epoch"
    a, b = load_file(str(single / "last" / "model.safetensors")), load_file(str(double / "last" / "model.safetensors"))
    # in steps: each weight's gap over its own step (the attention temperatures step TEMPERATURE_LR_SCALE lr)
    gaps = torch.cat([((a[k] - b[k]).abs() / (TrainConfig().lr * (TEMPERATURE_LR_SCALE if k.endswith(".log_tau")
                                                                  else 1.0))).flatten()
                      for k in a if a[k].is_floating_point()])
    assert gaps.max() <= 2, f"a weight {gaps.max():.2f} steps apart: more than a step either way"
    assert (gaps > 0.1).sum() <= 1e-4 * gaps.numel(), f"{int((gaps > 0.1).sum())} weights a tenth of a step apart"


def test_early_stopping_waits_for_the_minimum_number_of_epochs(mmsa, tmp_path):
    """With nothing to learn (lr 0) the validation loss never improves after epoch 1: patience alone would stop
    at epoch 3; the run goes on to --min-epochs, then stops (--min-steps 0: the epochs alone decide here)."""
    out = tmp_path / "flat"
    assert train_module.main(flags(mmsa, out, epochs=12) + ["--lr", "0", "--patience", "2", "--min-epochs", "6",
                                                            "--min-steps", "0"]) == 0
    rows = log_rows(out)
    assert len(rows) == 6 and len({r["valid_metric"] for r in rows}) == 1 and len({r["valid_loss"] for r in rows}) == 1
    # epoch 1 ends within the warm-up (10% of the steps): kept until epoch 2, the first after it, replaces it
    # although its loss is no lower; after that only a lower loss would (issue 33: a lucky warm-up epoch kept)
    assert [r["kept"] for r in rows] == ["1", "1", "0", "0", "0", "0"]
    assert json.loads((out / "last" / "progress.json").read_text())["progress"]["kept_epoch"] == 2
