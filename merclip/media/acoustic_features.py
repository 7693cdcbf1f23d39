"""Frame-level acoustic features (librosa) that the learned audio adapter maps into CLIP space.

CLIP has no audio tower, so the audio stage sees hand-crafted prosody and timbre:
MFCCs and their deltas (timbre, articulation), log energy (loudness), log pitch
(intonation), spectral shape and zero-crossing rate (voice quality). Values are
put on comparable scales with fixed transforms, so features from different clips
stay comparable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# librosa compiles its kernels with numba on first use (~15 s on 2 cores); a cache
# folder makes that a one-time cost per machine instead of per process.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "merclip" / "numba"))

SAMPLE_RATE = 16_000
FRAME_RATE_HZ = 20
HOP = SAMPLE_RATE // FRAME_RATE_HZ
N_FFT = 2 * HOP
N_MFCC = 20
FEATURE_NAMES = (
    [f"mfcc{i}" for i in range(N_MFCC)]
    + [f"delta_mfcc{i}" for i in range(N_MFCC)]
    + ["log_rms", "log_pitch", "voiced", "log_centroid", "log_bandwidth", "log_rolloff", "flatness", "zcr"]
)
AUDIO_FEATURE_DIM = len(FEATURE_NAMES)
_PITCH_MIN_HZ, _PITCH_MAX_HZ = 65.0, 500.0


def audio_frame_features(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(T, AUDIO_FEATURE_DIM) float32 features and the (T,) time in seconds of each frame's centre."""
    import librosa  # slow to import (numba); only needed here

    if sample_rate != SAMPLE_RATE:
        waveform = librosa.resample(waveform, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    y = np.ascontiguousarray(waveform, dtype=np.float32)
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    frame = dict(n_fft=N_FFT, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=N_MFCC, **frame)
    delta = librosa.feature.delta(mfcc, width=min(9, _odd_at_most(mfcc.shape[1])), mode="nearest")
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)
    pitch = librosa.yin(y, fmin=_PITCH_MIN_HZ, fmax=_PITCH_MAX_HZ, sr=SAMPLE_RATE, frame_length=N_FFT, hop_length=HOP)
    voiced = (rms > 0.02 * max(float(rms.max()), 1e-6)).astype(np.float32)
    centroid = librosa.feature.spectral_centroid(y=y, sr=SAMPLE_RATE, **frame)
    bandwidth = librosa.feature.spectral_bandwidth(y=y, sr=SAMPLE_RATE, **frame)
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=SAMPLE_RATE, **frame)
    flatness = librosa.feature.spectral_flatness(y=y, **frame)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)
    frames = min(x.shape[-1] for x in (mfcc, rms, pitch[None], centroid, zcr))
    rows = [
        mfcc[:, :frames] / 100.0,
        delta[:, :frames] / 10.0,
        np.log10(rms[:, :frames] + 1e-5) / 5.0 + 1.0,
        np.log2(pitch[None, :frames] / 200.0),
        voiced[:, :frames],
        np.log2((centroid[:, :frames] + 1.0) / 2000.0),
        np.log2((bandwidth[:, :frames] + 1.0) / 2000.0),
        np.log2((rolloff[:, :frames] + 1.0) / 4000.0),
        flatness[:, :frames] * 10.0,
        zcr[:, :frames] * 10.0,
    ]
    features = np.concatenate(rows, axis=0).T.astype(np.float32)
    times = librosa.frames_to_time(np.arange(frames), sr=SAMPLE_RATE, hop_length=HOP).astype(np.float32)
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), times


def _odd_at_most(n: int) -> int:
    """librosa's delta needs an odd width >= 3 that fits the number of frames."""
    return max(3, n if n % 2 else n - 1)
