"""Generators for the interaction benchmark: per-frame voice and face features whose score only a
combination of the two modalities reveals, each with its oracle (the best prediction a learner
that knows the generator can make from the same features).

Every generator draws, for each sample, CMU-MOSI-shaped sequences (50 voice frames of 5 features,
8 face frames of 20) of unit Gaussian noise and plants a latent voice value `a` and face value `b`
(each N(0, 1)) along a fixed direction of that modality's features:

- `xor` and `x^2`: train/planted.py's product-of-means cases (the voice's sign times a face
  feature that is the score; the square of a face feature), kept for comparison;
- `sign x sign`: score = 2 sign(a) sign(b); `a` and `b` lie in every frame, so the means of the
  frames along the two directions carry them, but only their product says the score;
- `frame-local sign x sign`: the same score, but `a` lives only in 5 consecutive voice frames
  (half a second) and `b` in 2 consecutive face frames at another time, each marked by a cue
  feature (voice activity; a face in view) that does not depend on the score: the mean of the
  frames dilutes the signs 10x and 4x, attention to the cued frames does not;
- `weak linear`: score = a + b, planted weakly (0.25 per frame against unit noise);
- `null`: scores drawn independently of the features (nothing to learn: corr must stay near 0).

The oracle is E[score | features] where it has a closed form (sign x sign, weak linear, null)
and the plug-in estimate from the frame means otherwise (xor, x^2), as the generators define them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from train.planted import AUDIO_DIM, AUDIO_FEATURE, AUDIO_LEN, VISION_DIM, VISION_FEATURE, VISION_LEN, plant_interaction

VOICE_SPAN, FACE_SPAN = 5, 2  # frame-local: frames that carry the sign (of 50 voice, of 8 face frames)
LOCAL_GAIN = 2.0  # frame-local: the latent's scale on its carrying frames (unit noise per feature)
CUE = 3.0  # frame-local: the cue feature's rise on the carrying frames
WEAK_GAIN = 0.25  # weak linear: the latent's scale on every frame
SIGN_SCORE = 2.0  # sign x sign: the score is +-2 (MOSI's "positive" / "negative")


@dataclass(frozen=True)
class Split:
    """Features of one split, their scores, the oracle's predictions and, per sample, the frames
    that carry the signal (for the attention figure; empty where every frame does)."""

    audio: np.ndarray  # (n, 50, 5)
    vision: np.ndarray  # (n, 8, 20)
    scores: np.ndarray  # (n,) in [-3, 3]
    oracle: np.ndarray  # (n,)
    carried: list[dict[str, list[int]]]


def _directions() -> tuple[np.ndarray, np.ndarray]:
    """The fixed unit directions of the voice and face latents; the last feature of each modality is
    left out (frame-local's cue)."""
    rng = np.random.default_rng(2025)
    voice, face = np.zeros(AUDIO_DIM), np.zeros(VISION_DIM)
    voice[:-1], face[:-1] = rng.standard_normal(AUDIO_DIM - 1), rng.standard_normal(VISION_DIM - 1)
    return voice / np.linalg.norm(voice), face / np.linalg.norm(face)


VOICE_DIRECTION, FACE_DIRECTION = _directions()


def _noise(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.standard_normal((n, AUDIO_LEN, AUDIO_DIM)).astype(np.float32),
            rng.standard_normal((n, VISION_LEN, VISION_DIM)).astype(np.float32))


def _prob_positive(mean: np.ndarray, noise_var: float) -> np.ndarray:
    """P(latent > 0 | an observed mean = latent + N(0, noise_var)), with the latent N(0, 1)."""
    z = mean / math.sqrt(noise_var * (1 + noise_var))
    return 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))


def _projections(audio: np.ndarray, vision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return audio @ VOICE_DIRECTION, vision @ FACE_DIRECTION  # (n, frames) each


def sign_x_sign(rng: np.random.Generator, n: int) -> Split:
    audio, vision = _noise(rng, n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    audio += (a[:, None, None] * VOICE_DIRECTION).astype(np.float32)
    vision += (b[:, None, None] * FACE_DIRECTION).astype(np.float32)
    voice, face = _projections(audio, vision)
    oracle = SIGN_SCORE * ((2 * _prob_positive(voice.mean(1), 1 / AUDIO_LEN) - 1)
                           * (2 * _prob_positive(face.mean(1), 1 / VISION_LEN) - 1))
    return Split(audio, vision, SIGN_SCORE * np.sign(a) * np.sign(b), oracle, [{} for _ in range(n)])


def frame_local_sign_x_sign(rng: np.random.Generator, n: int) -> Split:
    audio, vision = _noise(rng, n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    carried = []
    for i in range(n):
        face_start = int(rng.integers(0, VISION_LEN - FACE_SPAN + 1))
        voice_start = _elsewhere(rng, face_start)
        voice_frames, face_frames = list(range(voice_start, voice_start + VOICE_SPAN)), list(
            range(face_start, face_start + FACE_SPAN))
        audio[i, voice_frames] += (LOCAL_GAIN * a[i] * VOICE_DIRECTION).astype(np.float32)
        vision[i, face_frames] += (LOCAL_GAIN * b[i] * FACE_DIRECTION).astype(np.float32)
        audio[i, voice_frames, -1] += CUE
        vision[i, face_frames, -1] += CUE
        carried.append({"audio": voice_frames, "vision": face_frames})
    voice, face = _projections(audio, vision)
    voice_mean = np.array([voice[i, c["audio"]].mean() for i, c in enumerate(carried)]) / LOCAL_GAIN
    face_mean = np.array([face[i, c["vision"]].mean() for i, c in enumerate(carried)]) / LOCAL_GAIN
    oracle = SIGN_SCORE * ((2 * _prob_positive(voice_mean, 1 / (VOICE_SPAN * LOCAL_GAIN ** 2)) - 1)
                           * (2 * _prob_positive(face_mean, 1 / (FACE_SPAN * LOCAL_GAIN ** 2)) - 1))
    return Split(audio, vision, SIGN_SCORE * np.sign(a) * np.sign(b), oracle, carried)


def _elsewhere(rng: np.random.Generator, face_start: int) -> int:
    """A voice span's first frame whose half second does not overlap the face frames' time (the 50 voice
    frames and the 8 face frames cover the same 5 s)."""
    per_face = AUDIO_LEN / VISION_LEN
    busy = (face_start * per_face, (face_start + FACE_SPAN) * per_face)
    starts = [s for s in range(AUDIO_LEN - VOICE_SPAN + 1) if s + VOICE_SPAN <= busy[0] or s >= busy[1]]
    return int(rng.choice(starts))


def weak_linear(rng: np.random.Generator, n: int) -> Split:
    audio, vision = _noise(rng, n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    audio += (WEAK_GAIN * a[:, None, None] * VOICE_DIRECTION).astype(np.float32)
    vision += (WEAK_GAIN * b[:, None, None] * FACE_DIRECTION).astype(np.float32)
    voice, face = _projections(audio, vision)
    voice_var, face_var = 1 / (AUDIO_LEN * WEAK_GAIN ** 2), 1 / (VISION_LEN * WEAK_GAIN ** 2)
    oracle = voice.mean(1) / WEAK_GAIN / (1 + voice_var) + face.mean(1) / WEAK_GAIN / (1 + face_var)
    return Split(audio, vision, np.clip(a + b, -3, 3), oracle, [{} for _ in range(n)])


def null(rng: np.random.Generator, n: int) -> Split:
    audio, vision = _noise(rng, n)
    scores = np.round(rng.uniform(-3, 3, n), 1)
    return Split(audio, vision, scores, np.zeros(n), [{} for _ in range(n)])


def _product_of_means(kind: str) -> Callable[[np.random.Generator, int], Split]:
    def generate(rng: np.random.Generator, n: int) -> Split:
        audio, vision = _noise(rng, n)
        scores = np.round(rng.uniform(-3, 3, n), 1)
        for i, score in enumerate(scores):
            plant_interaction(kind, score, audio[i], vision[i], rng)
        voice, face = audio[:, :, AUDIO_FEATURE].mean(1), vision[:, :, VISION_FEATURE].mean(1)
        oracle = (np.sign(voice) * face if kind == "xor"
                  else (face ** 2 - 1 / VISION_LEN) / 6 - 3)  # E[mean^2] = 6 (score + 3) + the noise's 1/8
        return Split(audio, vision, scores, np.clip(oracle, -3, 3), [{} for _ in range(n)])
    return generate


GENERATORS: dict[str, Callable[[np.random.Generator, int], Split]] = {
    "xor": _product_of_means("xor"),
    "x^2": _product_of_means("square"),
    "sign x sign": sign_x_sign,
    "frame-local sign x sign": frame_local_sign_x_sign,
    "weak linear": weak_linear,
    "null": null,
}


def pooled(split: Split) -> np.ndarray:
    """What the pooled baselines read: each sample's mean voice and mean face features (n, 25)."""
    return np.concatenate([split.audio.mean(axis=1), split.vision.mean(axis=1)], axis=1)


def corr(predictions: np.ndarray, scores: np.ndarray) -> float:
    """Pearson correlation; 0 for a constant prediction (it has found nothing)."""
    if np.std(predictions) < 1e-12 or np.std(scores) < 1e-12:
        return 0.0
    return float(np.corrcoef(predictions, scores)[0, 1])
