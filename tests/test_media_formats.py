"""Containers and codecs people actually upload: browser webm (VP8/VP9 + Opus), mov, mkv, avi,
phone rotation metadata and variable frame rate."""

import numpy as np
import pytest

from merclip.limits import Limits
from merclip.media.audio_decode import decode_audio
from merclip.media.frames import sample_frames
from merclip.media.probe import inspect_media
from merclip.media.sample_media import face_frames, speech_track, write_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer

SECONDS = 2.0
FPS = 15


@pytest.fixture(scope="module")
def speech():
    return speech_track(SECONDS)


@pytest.mark.parametrize(("name", "video_codec", "audio_codec"), [
    ("webcam_vp8.webm", "libvpx", "libopus"),
    ("webcam_vp9.webm", "libvpx-vp9", "libopus"),
    ("phone.mov", "libx264", "aac"),
    ("export.mkv", "libx264", "aac"),
    ("old.avi", "mpeg4", "pcm_s16le"),
])
def test_container_gives_frames_and_audio(tmp_path, speech, name, video_codec, audio_codec):
    path = write_clip(tmp_path / name, face_frames(int(SECONDS * FPS), 192), fps=FPS, audio=speech,
                      video_codec=video_codec, audio_codec=audio_codec)
    info = inspect_media(path, Limits())
    assert (info.kind, info.has_video, info.has_audio) == ("video", True, True)
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    frames, warnings = sample_frames(info, Limits(frames=8))
    assert warnings == []
    assert len(frames) == 8 and all(f.image.shape == (192, 192, 3) for f in frames)
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    waveform, _ = decode_audio(info, 120)
    assert len(waveform) == pytest.approx(SECONDS * 16000, rel=0.05)
    assert np.corrcoef(waveform[:30000], speech[:30000])[0, 1] > 0.9, "the decoded speech must be the speech we muxed"


def test_webm_from_a_browser_runs_end_to_end(tiny_model, tmp_path, speech):
    path = write_clip(tmp_path / "recording.webm", face_frames(int(SECONDS * FPS), 192), fps=FPS, audio=speech,
                      video_codec="libvpx", audio_codec="libopus")
    result = Analyzer(tiny_model, whisper="none").score(path, "happy, sad", options=AnalysisOptions(transcript="hello there"))
    assert result.modalities == ["text", "audio", "vision"]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_turns_frames_upright(tmp_path, rotation):
    upright = [f[:, 32:160] for f in face_frames(FPS, 192)]  # portrait 192 x 128
    stored = [np.ascontiguousarray(np.rot90(f, k=round(-rotation / 90))) for f in upright]
    path = write_clip(tmp_path / "phone.mp4", stored, fps=FPS, rotation=rotation)
    info = inspect_media(path, Limits())
    frames, _ = sample_frames(info, Limits(frames=1))
    image = frames[0].image
    assert image.shape == upright[0].shape
    nearest = upright[round(frames[0].time * FPS)]
    wrong_way = np.rot90(nearest, 2)
    assert np.abs(image.astype(int) - nearest).mean() < 0.4 * np.abs(image.astype(int) - wrong_way).mean()
    small, _ = sample_frames(info, Limits(frames=1, max_side=96))
    assert small[0].image.shape == (96, 64, 3)
    assert small[0].source_size == frames[0].source_size == (128, 192), "face boxes are in the upright file's pixels"


def test_variable_frame_rate_samples_the_frame_on_screen_at_each_target(tmp_path):
    times = [0.0, 0.05, 0.1, 0.5, 1.5, 1.6, 1.7, 2.2, 2.9, 3.0, 3.9]
    path = write_clip(tmp_path / "vfr.mp4", face_frames(len(times), 128), frame_times=times)
    info = inspect_media(path, Limits())
    frames, _ = sample_frames(info, Limits(frames=4))
    targets = [(i + 0.5) * info.duration / 4 for i in range(4)]
    expected = sorted({max(t for t in times if t <= target + 1e-3) for target in targets})
    assert [f.time for f in frames] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(("name", "keyframe_interval"), [
    ("export.mkv", None), ("camcorder.mts", FPS), ("broadcast.ts", 10_000),  # a keyframe a second; a single one
])
def test_a_file_that_starts_late_is_sampled_on_the_media_axis(tmp_path, name, keyframe_interval):
    """Timestamps from 5 s on (MPEG-TS adds its own offset too): frames spread over the clip, at
    times measured from its start like the audio, each showing the picture of its time."""
    seconds, frames_asked = 4.0, 8
    pictures = face_frames(int(seconds * FPS), 128)
    path = write_clip(tmp_path / name, pictures, fps=FPS, audio=speech_track(seconds), start=5.0,
                      keyframe_interval=keyframe_interval)
    info = inspect_media(path, Limits())
    assert info.duration == pytest.approx(seconds, abs=0.15)
    frames, warnings = sample_frames(info, Limits(frames=frames_asked))
    assert warnings == [] and len(frames) == frames_asked
    centres = [(i + 0.5) * info.duration / frames_asked for i in range(frames_asked)]
    assert [f.time for f in frames] == pytest.approx(centres, abs=1.01 / FPS)
    for frame in frames:
        shown = pictures[round(frame.time * FPS)]
        error = np.abs(frame.image.astype(int) - shown).mean()
        others = min(np.abs(frame.image.astype(int) - p).mean() for i, p in enumerate(pictures)
                     if abs(i - frame.time * FPS) > 3)
        assert error < others, f"the picture at {frame.time:.2f} s is the one shown then"
    waveform, _ = decode_audio(info, 120)
    assert len(waveform) / 16000 == pytest.approx(seconds, abs=0.15), "audio is on the same axis"


@pytest.mark.parametrize("count", [2, 3])
def test_a_clip_shorter_than_the_samples_gives_every_frame_and_says_so(tmp_path, count):
    pictures = face_frames(count, 128)
    path = write_clip(tmp_path / "short.mp4", pictures, fps=2)
    frames, warnings = sample_frames(inspect_media(path, Limits()), Limits(frames=8))
    assert [f.time for f in frames] == pytest.approx([i / 2 for i in range(count)], abs=0.01), "frame 0 included"
    assert any(f"only {count} different pictures" in w for w in warnings), warnings


def test_ffmpeg_never_logs_through_python_even_after_torchvision_asked_it_to(tmp_path):
    """torchvision's video module turns PyAV's Python log callback on at import; FFmpeg's decoder threads then
    take the GIL to log, which deadlocked an analysis whose picture and sound paths decoded at once."""
    import av.logging
    import torchvision.io.video  # noqa: F401 -- what `import torchvision` does in torchvision 0.25

    from merclip.media.probe import open_container

    av.logging.set_level(av.logging.ERROR)  # as torchvision.io.video does, in case it was imported before
    clip = write_clip(tmp_path / "clip.mp4", face_frames(4, 64), fps=4)
    assert av.logging.get_level() is None, "writing a clip leaves FFmpeg's logs out of Python"
    av.logging.set_level(av.logging.ERROR)
    with open_container(clip):
        assert av.logging.get_level() is None, "so does opening one"
