"""Rebuild the example clips in assets/examples: `python assets/make_examples.py` (needs Debian's espeak-ng).

Licence-clean by construction: the face is scikit-image's astronaut photograph
(Eileen Collins, NASA, public domain) and the voice is espeak-ng reading sentences
written for this project. H.264 + AAC in mp4, so every browser plays them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from merclip.media.audio_decode import read_waveform  # noqa: E402
from merclip.media.sample_media import face_frames, write_clip  # noqa: E402

FPS = 15
CLIPS = {
    "great_news.mp4": ("I just heard the best news of my whole life. I got the job! I am so happy.", False),
    "rough_day.mp4": ("Everything went wrong today. I missed the train and lost my keys. I feel terrible.", True),
}


def speak(sentence: str, folder: Path) -> np.ndarray:
    wav = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True)
    return read_waveform(wav, max_seconds=60)[0]


def main() -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed: apt-get install espeak-ng")
    out = ROOT / "assets" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, (sentence, mirrored) in CLIPS.items():
            speech = np.pad(speak(sentence, Path(scratch)), (8000, 8000))
            frames = face_frames(int(len(speech) / 16000 * FPS), size=320)
            if mirrored:
                frames = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
            write_clip(out / name, frames, fps=FPS, audio=speech)
            print(f"{out / name}: {len(speech) / 16000:.1f} s, {(out / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
