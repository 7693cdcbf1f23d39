"""Times are measured from the file's time 0 in every modality: frames, audio features and words
agree when one stream starts later than the other (defect 7 of issue 25)."""

import contextlib
import io
import json

import numpy as np
import pytest

from merclip.commands.cli import main
from merclip.limits import Limits
from merclip.media.acoustic_features import FEATURE_NAMES, SAMPLE_RATE, audio_frame_features
from merclip.media.audio_decode import decode_audio
from merclip.media.probe import inspect_media
from merclip.media.sample_media import face_frames, recordings, write_clip
from merclip.speech.transcribe import load_whisper

FPS = 10
SPEECH = "heath_ledger.mp3"  # "If you're good at something, never do it for free."
LOUD = 0.5  # log_rms feature of speech (silence is ~0)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return recordings((SPEECH,))[0]


@pytest.fixture(scope="module")
def heard(speech) -> list[dict]:
    """What the bundled Whisper hears in the bare recording, with times from its first sample."""
    return load_whisper("bundled", "cpu").transcribe(speech).to_dict()["words"]


def _loud_from(features: np.ndarray, times: np.ndarray) -> float:
    """The time of the first audio feature frame with speech in it."""
    loudness = features[:, FEATURE_NAMES.index("log_rms")]
    return float(times[np.argmax(loudness > LOUD)])


@pytest.mark.parametrize(("name", "audio_start", "video_start"), [
    ("late_sound.mp4", 1.936, 0.0), ("late_sound.mkv", 1.936, 0.0), ("late_picture.mp4", 0.0, 1.5),
])
def test_words_audio_and_frames_are_timed_from_the_start_of_the_file(tmp_path, speech, heard, name, audio_start,
                                                                     video_start):
    """A stream that starts later than the file (a camera's sound 1.936 s in; a picture 1.5 s in):
    each word is reported where it is spoken in the file, audio features likewise, and frames at
    their own times. Before, the sound was read as if it began at the file's start: the first word
    came 1.9 s early."""
    seconds = audio_start + len(speech) / SAMPLE_RATE + 0.5
    count = round((seconds - video_start) * FPS)
    # write_clip's `start` shifts the sound to `audio_start`; the frame times are then set relative to it
    path = write_clip(tmp_path / name, face_frames(count, 128), fps=FPS, audio=speech, start=audio_start,
                      frame_times=[video_start - audio_start + i / FPS for i in range(count)])

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["predict", str(path), "--labels", "happy, sad", "--clip", "merclip-tiny:random",
                     "--whisper", "bundled", "--device", "cpu", "--json"]) == 0
    result = json.loads(printed.getvalue())

    words = result["transcript"]["words"]
    assert [w["word"] for w in words] == [w["word"] for w in heard]
    for word, alone in zip(words, heard):
        assert word["start"] == pytest.approx(alone["start"] + audio_start, abs=0.3), (word, alone)
        assert word["end"] == pytest.approx(alone["end"] + audio_start, abs=0.3), (word, alone)

    waveform, _ = decode_audio(inspect_media(path, Limits()), 120)
    features, times = audio_frame_features(waveform)
    bare, bare_times = audio_frame_features(speech)
    assert _loud_from(features, times) == pytest.approx(_loud_from(bare, bare_times) + audio_start, abs=0.1)
    audio_times = next(s for s in result["stages"] if s["modality"] == "audio")["elements"]
    assert audio_times == pytest.approx(times[:len(audio_times)].tolist(), abs=1e-3), "the features the model read"

    frame_times = next(s for s in result["stages"] if s["modality"] == "vision")["elements"]
    assert len(frame_times) == 8 and min(frame_times) >= video_start - 1e-3 and max(frame_times) < seconds
