"""A corpus of hostile and malformed inputs, built on the fly from real media (nothing large committed).

Each media case is a file name and a builder; `EXPECT` says what a correct program does
with it: "error" (one readable line), "warning" (a result that says what was wrong, the
fragment given) or "ok" (a normal result).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from merclip.media.sample_media import face_frames, speech_track, write_clip

SECONDS = 3


def _clip(path: Path, seconds: float = SECONDS, **options) -> Path:
    return write_clip(path, face_frames(int(seconds * 5), 128), fps=5, audio=speech_track(seconds), **options)


def _patch_durations(data: bytes, value: int) -> bytes:
    """Overwrite the duration field of every mvhd/mdhd/tkhd box (version 0) with `value`."""
    patched = bytearray(data)
    offsets = {b"mvhd": 20, b"mdhd": 20, b"tkhd": 24}  # from the box type: version+flags, 2 times, timescale or id
    for box, offset in offsets.items():
        start = 0
        while (found := patched.find(box, start)) != -1:
            if patched[found + 4] == 0:  # version 0: 32-bit fields
                patched[found + offset: found + offset + 4] = struct.pack(">I", value)
            start = found + 4
    return bytes(patched)


def huge_duration(path: Path) -> Path:
    """A 3 s Matroska clip whose header claims to last 2,000,000 s (about 23 days)."""
    source = _clip(path.with_suffix(".src.mkv"))
    data = bytearray(source.read_bytes())
    element = data.find(bytes([0x44, 0x89, 0x88]))  # Segment Info > Duration, an 8-byte float in ms
    data[element + 3: element + 11] = struct.pack(">d", 2e9)
    path.write_bytes(bytes(data))
    source.unlink()
    return path


def zero_duration(path: Path) -> Path:
    """One frame in a container that claims no duration at all (0 s, no frame rate to speak of)."""
    source = write_clip(path.with_suffix(".src.mp4"), face_frames(1, 128), fps=1)
    path.write_bytes(_patch_durations(source.read_bytes(), 0))
    source.unlink()
    return path


def header_then_garbage(path: Path) -> Path:
    """A real mp4 whose media data (everything after the first 64 bytes of mdat) is random bytes."""
    source = _clip(path.with_suffix(".src.mp4"))
    data = bytearray(source.read_bytes())
    mdat = data.find(b"mdat")
    moov = data.find(b"moov")
    end = moov - 4 if moov > mdat else len(data)
    data[mdat + 64: end] = np.random.default_rng(1).bytes(end - mdat - 64)
    path.write_bytes(bytes(data))
    source.unlink()
    return path


def audio_only(path: Path) -> Path:
    return write_clip(path, None, audio=speech_track(SECONDS))


def animated_gif(path: Path) -> Path:
    frames = [Image.fromarray(frame) for frame in face_frames(6, 128)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)
    return path


def one_frame(path: Path) -> Path:
    return write_clip(path, face_frames(1, 128), fps=1, audio=speech_track(SECONDS))


def very_wide(path: Path) -> Path:
    return write_clip(path, [np.full((2, 4000, 3), 90 + 10 * i, np.uint8) for i in range(4)], fps=2,
                      video_codec="rawvideo")


def very_tall(path: Path) -> Path:
    return write_clip(path, [np.full((4000, 2, 3), 90 + 10 * i, np.uint8) for i in range(4)], fps=2,
                      video_codec="rawvideo")


def mp4_named_wav(path: Path) -> Path:
    return _clip(path.with_suffix(".mp4")).rename(path)


def png_named_mp4(path: Path) -> Path:
    Image.fromarray(face_frames(1, 160)[0]).save(path, format="PNG")
    return path


def wav_named_mp4(path: Path) -> Path:
    return write_clip(path.with_suffix(".wav"), None, audio=speech_track(SECONDS), audio_codec="pcm_s16le").rename(path)


def playlist_named_mp4(path: Path) -> Path:
    """An HLS playlist pointing at a local file: a demuxer that follows it would read the server's files."""
    path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    return path


def hostile_name(path: Path) -> Path:
    """A normal clip whose name has quotes, spaces, a newline, a shell metacharacter and '..'."""
    return _clip(path)


HOSTILE_NAME = "it's a \"clip\" ; rm -rf ~ $(id)\n..mp4"

MEDIA: dict[str, tuple[str, Callable[[Path], Path], str, str]] = {
    # case: (file name, builder, expectation, message fragment)
    "huge duration": ("huge.mkv", huge_duration, "warning", "its pictures end at"),
    "zero duration": ("zero.mp4", zero_duration, "warning", "no audio track"),
    "header then garbage": ("garbage.mp4", header_then_garbage, "error", "garbage.mp4"),
    "audio only mp4": ("voice.mp4", audio_only, "warning", "no picture"),
    "gif": ("anim.gif", animated_gif, "warning", "no audio track"),
    "one frame": ("single.mp4", one_frame, "ok", ""),
    "very wide": ("wide.avi", very_wide, "warning", "no face"),
    "very tall": ("tall.avi", very_tall, "warning", "no face"),
    "mp4 named .wav": ("clip.wav", mp4_named_wav, "ok", ""),
    "png named .mp4": ("photo.mp4", png_named_mp4, "ok", ""),
    "wav named .mp4": ("speech.mp4", wav_named_mp4, "warning", "no picture"),
    "playlist named .mp4": ("list.mp4", playlist_named_mp4, "error", "not a video, audio or image file"),
    "playlist": ("list.m3u8", playlist_named_mp4, "error", "not a video, audio or image file"),
    "hostile file name": (HOSTILE_NAME, hostile_name, "ok", ""),
}

LONG = "very " * 2000  # 10,000 characters
LABELS = {
    # case: (labels, expectation, fragment)
    "markup": ("<b>happy</b>, <script>alert(1)</script>, $\\frac{sad}{x}$, [link](javascript:alert(1))", "ok", ""),
    "emoji": ("😀|🙂 happy, 😢 sad, 🤬", "ok", ""),
    "control characters": ("ha\x00ppy, s\x1b[31mad\x07, calm\r\nish", "ok", ""),
    "10,000 characters": (f"{LONG}happy, sad", "warning", "longer than 200 characters"),
}
TEMPLATES = {
    "markup": ("<img src=x onerror=alert(1)> a photo of a {} face.", "ok", ""),
    "emoji and control characters": ("a 📷 photo\x00 of a {} face\x1b.", "ok", ""),
    "10,000 characters": (LONG + "{}", "error", "longer than 300 characters"),
}
LONG_TRANSCRIPT = ("so this is what I wanted to say " * 3200)[:100_000]
