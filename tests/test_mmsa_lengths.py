"""Aligned MMSA pickles carry no lengths: zero padding (at either end) must not be read as frames."""

import pickle

import numpy as np
import torch

from train.mmsa import load_mmsa

LENGTH = 12


def test_zero_padded_frames_of_an_aligned_pickle_are_not_elements(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    real = {"train": [(0, 5), (4, 12), (3, 9)], "valid": [(0, 12)], "test": [(2, 7)]}  # (start, end) of real frames
    data = {}
    for split, spans in real.items():
        n = len(spans)
        audio, vision = np.zeros((n, LENGTH, 3), np.float32), np.zeros((n, LENGTH, 4), np.float32)
        for i, (start, end) in enumerate(spans):
            audio[i, start:end] = rng.standard_normal((end - start, 3))
            vision[i, start:end] = rng.standard_normal((end - start, 4))
        if split == "train":
            audio[0, 1] = 0.0  # an all-zero frame inside the real span is still a frame
        audio[:, :, 0][audio[:, :, 0] < -1.5] = -np.inf  # COVAREP's unvoiced frames (one column), cleaned to 0
        data[split] = {"raw_text": np.array(["a fine day"] * n), "audio": audio, "vision": vision,
                       "regression_labels": np.linspace(-3, 3, n).astype(np.float32)}
    path = tmp_path / "aligned_50.pkl"
    with open(path, "wb") as handle:
        pickle.dump(data, handle)

    loaded = load_mmsa(path, tiny_model.clip, show_progress=False)
    for split, spans in real.items():
        for i, (sample, (start, end)) in enumerate(zip(loaded.split(split), spans)):
            assert sample.features.audio.shape == (end - start, 3)
            assert sample.features.vision.shape == (end - start, 4)
            assert torch.equal(sample.features.vision, torch.from_numpy(data[split]["vision"][i, start:end]))
            assert len(sample.features.audio_times) == end - start
