"""Real test and example media built from files that ship in packages (no downloads).

A face: scikit-image's astronaut photograph (Eileen Collins, public domain, NASA).
Speech: the two film-quote recordings that ship with gradio. Clips are written as
H.264 + AAC mp4 with PyAV so browsers can play them. The tests, the benchmark and
the example-building script all use these builders.
"""

from __future__ import annotations

import itertools
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.audio_decode import read_waveform
from merclip.media.probe import keep_ffmpeg_out_of_python

SPEECH_FILES = ("cate_blanch.mp3", "heath_ledger.mp3")
SPEECH_TEXT = {
    "heath_ledger.mp3": "If you're good at something, never do it for free.",
    "cate_blanch.mp3": "I sleep with a dagger. If you so much as move to touch me, I will sever your mind. You understand?",
}


def recordings(names: tuple[str, ...]) -> list[np.ndarray]:
    """The named gradio speech recordings as 16 kHz mono waveforms."""
    import gradio.media

    return [read_waveform(gradio.media.get_audio(name), max_seconds=60)[0] for name in names]


def speech_track(seconds: float, gap_seconds: float = 0.4) -> np.ndarray:
    """`seconds` of speech made of whole recordings (Whisper tiny.en was seen to drop a
    sentence cut off mid-word), padded with silence; cut only if even one is too long."""
    needed = int(seconds * SAMPLE_RATE)
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), np.float32)
    spoken = recordings(SPEECH_FILES)
    parts, length = [], 0
    for recording in itertools.cycle(spoken):
        if length + len(recording) > needed:
            break
        parts += [recording, gap]
        length += len(recording) + len(gap)
    track = np.concatenate(parts) if parts else spoken[0]
    return np.pad(track, (0, max(0, needed - len(track))))[:needed]


ASTRONAUT_FACE = (174, 62, 100, 110)  # x, y, w, h of the face in skimage's 512 x 512 astronaut photograph


def face_windows(count: int) -> list[tuple[int, int, int]]:
    """(left, top, side) of the square of the astronaut photograph that each of `count` frames shows."""
    windows = []
    for i in range(count):
        progress = i / max(1, count - 1)
        windows.append((int(20 + 30 * progress), int(10 + 10 * progress), int(440 - 60 * progress)))
    return windows


def face_frames(count: int, size: int = 384) -> list[np.ndarray]:
    """`count` frames of a real face with a slow pan and zoom, so consecutive frames differ."""
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut())
    return [np.asarray(photo.crop((left, top, left + side, top + side)).resize((size, size)))
            for left, top, side in face_windows(count)]


def write_clip(path: str | Path, frames: list[np.ndarray] | None, fps: float = 15, audio: np.ndarray | None = None,
               sample_rate: int = SAMPLE_RATE, audio_codec: str = "aac", video_codec: str = "libx264",
               frame_times: list[float] | None = None, rotation: int = 0, start: float = 0.0,
               keyframe_interval: int | None = None) -> Path:
    """Mux RGB frames and/or a mono waveform into any container PyAV knows by extension.

    Video is yuv420p (`rawvideo` keeps rgb24 and any size); `frame_times` in seconds
    give a variable frame rate; `rotation` (degrees counterclockwise) is written as
    display-matrix metadata, as phones do, leaving the pixels as they are; `start` shifts
    every timestamp (camcorder and broadcast files rarely start at 0); `keyframe_interval`
    is in frames (a large one gives a single keyframe).
    """
    path = Path(path)
    if start and frames:
        frame_times = [start + t for t in (frame_times or [i / fps for i in range(len(frames))])]
    keep_ffmpeg_out_of_python()
    with av.open(str(path), "w") as out:
        video = None
        if frames:
            height, width = frames[0].shape[:2]
            video = out.add_stream(video_codec, rate=round(fps))
            if video_codec == "rawvideo":
                video.width, video.height, video.pix_fmt = width, height, "rgb24"
            else:
                video.width, video.height, video.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
            if video_codec == "libx264":
                video.options = {"preset": "veryfast", "crf": "26"}
            if keyframe_interval:
                video.codec_context.gop_size = keyframe_interval
                video.options = {**video.options, "sc_threshold": "0"}  # no extra keyframes at scene cuts
            if frame_times is not None:
                video.codec_context.time_base = Fraction(1, 1000)
            if rotation:
                video.set_display_rotation(rotation)
        sound = out.add_stream(audio_codec, rate=sample_rate, layout="mono") if audio is not None else None
        for index, image in enumerate(frames or []):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: video.height, : video.width]), format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = round(frame_times[index] * 1000), Fraction(1, 1000)
            out.mux(video.encode(frame))
        if video is not None:
            out.mux(video.encode(None))
        if sound is not None:
            _mux_audio(out, sound, audio.astype(np.float32), sample_rate, first_pts=round(start * sample_rate))
    return path


def _mux_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, audio: np.ndarray,
               sample_rate: int, first_pts: int = 0) -> None:
    chunk = stream.codec_context.frame_size or 1024
    sample_format = stream.codec_context.format.name
    for start in range(0, len(audio), chunk):
        samples = audio[start: start + chunk]
        if sample_format.startswith("s16"):
            samples = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format=sample_format, layout="mono")
        frame.sample_rate, frame.pts = sample_rate, first_pts + start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def speech_clip(path: str | Path, seconds: float = 10.0, fps: float = 15, size: int = 384) -> Path:
    """A clip of a real face and real speech, `seconds` long."""
    return write_clip(path, face_frames(int(seconds * fps), size), fps=fps, audio=speech_track(seconds))


def write_fake_camera(path: str | Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Frames as plain YUV4MPEG2 (4:2:0), the file Chromium's fake camera plays in a loop
    (`--use-file-for-fake-video-capture`): a browser test or a screenshot gets a real face on camera."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            ycbcr = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
            out.write(b"FRAME\n" + ycbcr[:, :, 0].tobytes())
            for channel in (1, 2):  # chroma at half resolution
                out.write(np.asarray(Image.fromarray(ycbcr[:, :, channel]).resize((width // 2, height // 2))).tobytes())
    return Path(path)


def write_fake_microphone(path: str | Path, waveform: np.ndarray) -> Path:
    """A 16 kHz mono waveform as 16-bit PCM WAV, the file Chromium's fake microphone plays in a loop
    (`--use-file-for-fake-audio-capture`)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(waveform, -1, 1) * 32767).astype(np.int16).tobytes())
    return Path(path)
