"""Datasets with a planted signal, in the exact formats training reads, to show what the head learns.

Each case hides a sentiment score (or a class) in chosen elements of chosen modalities and
records where: the words, the audio frames, the video frames that carry it. Training on it
must beat CLIP zero-shot, and afterwards the attention of the stage that carries the signal
should sit on those elements. Used by the tests and by `python -m train.learning`.

- MMSA pickles (CMU-MOSI's layout: Facet vision, COVAREP audio, raw text) for the text,
  audio, vision and fusion cases, and for two that no sum of per-modality evidence can read
  (xor of a voice and a face sign; the square of a face feature), with `pooled_ridge` as the
  plain learner to compare with;
- a video manifest of real pictures from scikit-image (the class is the face shown in 2
  of 8 frames, the other frames are other photographs) for the raw-video route.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILLER = ["the", "movie", "was", "about", "a", "man", "and", "his", "dog", "in", "town", "then", "it", "went", "on"]
POSITIVE = ["wonderful", "brilliant", "amazing", "great", "loved"]
NEGATIVE = ["awful", "terrible", "horrible", "boring", "hated"]
TEXT_LEN, AUDIO_LEN, VISION_LEN = 20, 50, 8  # words; audio frames (10 per second); video frames
AUDIO_DIM, VISION_DIM = 5, 20  # CMU-MOSI's COVAREP and Facet widths are larger; any width works
CARRIED_WORDS, CARRIED_AUDIO, CARRIED_FRAMES = 3, 10, 2  # up to 3 of 20 words, one second of audio, 2 of 8 frames
AUDIO_FEATURE, VISION_FEATURE = 2, 3  # which feature column carries the score


@dataclass(frozen=True)
class Case:
    """`carriers`: the modalities whose chosen elements carry the score. Fusion: the words give its
    sign and the voice its size, so neither modality alone can predict it. `interaction` plants a
    score no sum of per-modality evidence can read (see `plant_interaction`)."""

    name: str
    carriers: tuple[str, ...]
    localised: bool = False  # only a few elements carry it (else every audio and video frame, 3 words per point)
    fusion: bool = False
    interaction: str = ""  # "xor" | "square"


MMSA_CASES = {case.name: case for case in (
    Case("text", ("text",)),
    Case("audio", ("audio",)),
    Case("vision", ("vision",)),
    Case("text, 3 of 20 words", ("text",), localised=True),
    Case("audio, 1 s of 5 s", ("audio",), localised=True),
    Case("vision, 2 of 8 frames", ("vision",), localised=True),
    Case("fusion: sign in words, size in voice", ("text", "audio"), localised=True, fusion=True),
    Case("xor: sign of voice x sign of face", ("audio", "vision"), interaction="xor"),
    Case("x^2: square of a face feature", ("vision",), interaction="square"),
)}


def write_mmsa(path: Path, case: Case, sizes: dict[str, int], seed: int = 0) -> tuple[Path, dict[str, dict]]:
    """The pickle, and for each sample id the positions of the elements that carry its score."""
    rng = np.random.default_rng(seed)
    data, carried = {}, {}
    for split, n in sizes.items():
        scores = np.round(rng.uniform(-3, 3, n), 1)
        audio = rng.standard_normal((n, AUDIO_LEN, AUDIO_DIM)).astype(np.float32)
        vision = rng.standard_normal((n, VISION_LEN, VISION_DIM)).astype(np.float32)
        texts, ids = [], []
        for i, score in enumerate(scores):
            ids.append(f"{case.name}-{split}-{i}")
            where = {}
            words = list(rng.choice(FILLER, TEXT_LEN))
            if "text" in case.carriers:  # the sign in the words; the size in how many (fusion: always 3)
                per_point = 1 if case.localised else CARRIED_WORDS
                count = CARRIED_WORDS if case.fusion else min(CARRIED_WORDS * per_point, round(abs(score) * per_point))
                where["text"] = sorted(rng.choice(TEXT_LEN, count, replace=False).tolist())
                for position in where["text"]:
                    words[position] = str(rng.choice(POSITIVE if score > 0 else NEGATIVE))
            if case.interaction:
                where = {m: list(range(AUDIO_LEN if m == "audio" else VISION_LEN)) for m in case.carriers}
                plant_interaction(case.interaction, score, audio[i], vision[i], rng)
            elif "audio" in case.carriers:
                start = int(rng.integers(0, AUDIO_LEN - CARRIED_AUDIO + 1)) if case.localised else 0
                where["audio"] = list(range(start, start + (CARRIED_AUDIO if case.localised else AUDIO_LEN)))
                audio[i, where["audio"], AUDIO_FEATURE] += 2 * (abs(score) if case.fusion else score)
            if "vision" in case.carriers and not case.interaction:
                where["vision"] = (sorted(rng.choice(VISION_LEN, CARRIED_FRAMES, replace=False).tolist())
                                   if case.localised else list(range(VISION_LEN)))
                vision[i, where["vision"], VISION_FEATURE] += 2 * score
            texts.append(" ".join(words))
            carried[ids[-1]] = where
        data[split] = {
            "raw_text": np.array(texts), "audio": audio, "vision": vision,
            "text": np.zeros((n, TEXT_LEN, 768), np.float32), "text_bert": np.zeros((n, 3, TEXT_LEN), np.float32),
            "id": np.array(ids), "regression_labels": scores.astype(np.float32),
            "audio_lengths": np.full(n, AUDIO_LEN), "vision_lengths": np.full(n, VISION_LEN),
        }
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return path, carried


def plant_interaction(kind: str, score: float, audio: np.ndarray, vision: np.ndarray,
                       rng: np.random.Generator) -> None:
    """Every frame of one sample. xor: the voice feature is +-1 at random, the face feature the score
    with the voice's sign, so their product is the score while each alone says nothing of its sign.
    square: the face feature is sqrt(6 * (score + 3)) with a random sign: only its square tells."""
    sign = rng.choice((-1.0, 1.0))
    if kind == "xor":
        audio[:, AUDIO_FEATURE] += sign
        vision[:, VISION_FEATURE] += sign * score
    else:
        vision[:, VISION_FEATURE] += sign * np.sqrt(6 * (score + 3))


def pooled_ridge(path: Path) -> float:
    """Test corr of ridge regression on each sample's mean audio and vision features, or on their
    degree-2 polynomial features (which reach products and squares), the degree and the strength
    chosen on the valid split: what a plain learner finds in the same pickle. (Degree 2 alone has
    351 features, too many for 80 training samples to fit a plain linear signal well.)"""
    from train.baselines import pooled_ridge_scores

    with open(path, "rb") as handle:
        data = pickle.load(handle)  # a pickle this module wrote

    def pooled(split: str) -> tuple[np.ndarray, np.ndarray]:
        part = data[split]
        return (np.concatenate([part["audio"].mean(axis=1), part["vision"].mean(axis=1)], axis=1),
                part["regression_labels"])

    return pooled_ridge_scores(*(pooled(s) for s in ("train", "valid", "test")))


def write_video_manifest(folder: Path, sizes: dict[str, int], seed: int = 0, size: int = 96
                         ) -> tuple[Path, dict[str, dict]]:
    """Clips of 8 frames at 8 fps, one frame per sample: 2 frames (anywhere) show the class's face,
    the 6 others photographs without a face. The manifest, and each clip's carrying frames."""
    from merclip.media import write_clip

    faces, others = _pictures(size)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, carried = ["path,split,label"], {}
    for split, n in sizes.items():
        for i in range(n):
            label = VIDEO_CLASSES[i % 2]
            frames = [others[j] for j in rng.choice(len(others), VISION_LEN)]
            where = sorted(rng.choice(VISION_LEN, CARRIED_FRAMES, replace=False).tolist())
            for position in where:
                frames[position] = faces[label]
            name = f"{split}-{i}.mp4"
            write_clip(folder / name, frames, fps=VISION_LEN)
            rows.append(f"{name},{split},{label}")
            carried[str((folder / name).resolve())] = {"vision": where}
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "manifest.csv", carried


VIDEO_CLASSES = ("smiling", "frowning")  # the label words; the faces that stand for them are fixed pictures


def _pictures(size: int) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Two real faces (the NASA astronaut portrait; a face from Labeled Faces in the Wild) and five
    real photographs without faces, all from scikit-image."""
    from PIL import Image
    from skimage import data

    def square(image: np.ndarray) -> np.ndarray:
        picture = Image.fromarray(image if image.ndim == 3 else np.stack([image] * 3, axis=-1)).convert("RGB")
        side = min(picture.size)
        return np.asarray(picture.crop((0, 0, side, side)).resize((size, size)))

    lfw = (data.lfw_subset()[3] * 255).astype(np.uint8)
    faces = {VIDEO_CLASSES[0]: square(data.astronaut()[20:330, 120:430]), VIDEO_CLASSES[1]: square(lfw)}
    others = [square(image) for image in (data.coffee(), data.chelsea(), data.rocket(), data.camera(), data.brick())]
    return faces, others
