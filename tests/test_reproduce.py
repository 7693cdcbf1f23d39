"""`python -m train.reproduce`: three seeds trained and evaluated, printed in MMSA's columns and units."""

import json

import numpy as np
import pytest

from train import reproduce as reproduce_module
from train.planted import MMSA_CASES, write_mmsa

SIZES = {"train": 16, "valid": 8, "test": 8}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_mmsa(tmp_path_factory.mktemp("mosi") / "unaligned_50.pkl", MMSA_CASES["text"], SIZES)[0]


def test_three_seeds_train_and_print_mmsa_columns_in_percent(planted, tmp_path, capsys):
    out = tmp_path / "repro"
    assert reproduce_module.main(["--data", str(planted), "--dataset", "mosi", "--out", str(out), "--clip",
                                  "merclip-tiny:random", "--epochs", "1", "--device", "cpu"]) == 0
    for seed in (1111, 1112, 1113):
        config = json.loads((out / f"seed{seed}" / "train_config.json").read_text())
        assert config["seed"] == seed and (out / f"seed{seed}" / "model.safetensors").is_file()
        assert config["dataset"] == "mosi", "train.train is told the dataset, not left to its default"
    report = json.loads((out / "report.json").read_text())
    assert len(report["runs"]) == 3 and report["n"] == SIZES["test"]

    printed = capsys.readouterr().out
    table = (out / "table.md").read_text()
    assert table in printed
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    assert header.split(" | ")[1:] == ["Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5",
                                       "Mult_acc_7", "MAE", "Corr |"]
    ours = next(line for line in lines if line.startswith("| MER-CLIP, CLIP merclip-tiny:random |"))
    cells = [cell.strip() for cell in ours.strip("|").split("|")[1:]]
    for cell, key in zip(cells, ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr")):
        values = [run[key] for run in report["runs"]]
        assert cell == f"{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}", key
    assert "| MMSA self_mm (theirs) | 83.0 | 83.05 |" in table and reproduce_module.PUBLISHED_SOURCE in table


def test_a_dataset_that_does_not_match_the_labels_is_refused_before_training(planted, tmp_path, capsys):
    assert reproduce_module.main(["--data", str(planted), "--dataset", "sims", "--out", str(tmp_path / "x"),
                                  "--clip", "merclip-tiny:random", "--epochs", "1", "--device", "cpu"]) == 2
    assert "outside CH-SIMS's [-1, 1]: is it MOSI or MOSEI?" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
