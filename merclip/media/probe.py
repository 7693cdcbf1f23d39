"""Find out what a file is (image, video, audio) before any heavy work, and refuse what we cannot read.

Every check here turns a would-be traceback deep in a decoder into one readable line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging
from PIL import Image, UnidentifiedImageError

from merclip.errors import MerClipError
from merclip.limits import Limits

IMAGE_FORMATS = {"PNG", "JPEG", "BMP", "WEBP", "TIFF"}
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class MediaInfo:
    """kind: "image" | "video" | "audio"; duration: seconds from the file's time 0 to the end of its
    picture (or, without one, its sound) (0 for images)."""

    path: Path
    kind: str
    size_bytes: int
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0


def inspect_media(path: str | os.PathLike, limits: Limits) -> MediaInfo:
    file = Path(path)
    if not file.exists():
        raise MerClipError(f"file not found: {file}")
    if not file.is_file():
        raise MerClipError(f"not a file: {file}")
    size = file.stat().st_size
    if size == 0:
        raise MerClipError(f"the file is empty (0 bytes): {file.name}")
    if size > limits.max_file_mb * 1024 * 1024:
        raise MerClipError(f"the file is {size / 2**20:.0f} MB; the limit is {limits.max_file_mb:.0f} MB")
    image = _image_size(file)
    if image is not None:
        return MediaInfo(file, "image", size, 0.0, True, False, *image)
    if _is_text(file):
        raise MerClipError(f"{file.name} is not a video, audio or image file we can read (it is text)")
    try:
        with open_container(file) as container:
            pictures = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            video = pictures[0] if pictures else None
            has_audio = bool(container.streams.audio)
            if video is None and not has_audio:
                raise MerClipError(f"{file.name} has neither a video nor an audio stream")
            duration = _duration(container, video or container.streams.audio[0])
            width, height = (video.codec_context.width, video.codec_context.height) if video else (0, 0)
    except av.error.FFmpegError as exc:
        raise MerClipError(f"{file.name} is not a video, audio or image file we can read ({_reason(exc)})") from None
    if video is not None and (width < 1 or height < 1):
        raise MerClipError(f"{file.name}: the video stream has no picture size")
    kind = "video" if video is not None else "audio"
    return MediaInfo(file, kind, size, duration, video is not None, has_audio, width, height)


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file for reading with FFmpeg limited to the local file itself.

    The absolute path keeps FFmpeg from reading a name like `http:x.mp4` as a protocol,
    and the protocol whitelist keeps demuxers that follow references (playlists) from
    opening network addresses.
    """
    keep_ffmpeg_out_of_python()
    return av.open(str(Path(path).absolute()), metadata_errors="ignore", options={"protocol_whitelist": "file"})


def keep_ffmpeg_out_of_python() -> None:
    """Leave FFmpeg's log messages unread (PyAV's default) before any decoding or encoding.

    torchvision 0.25's video module, which `import torchvision` loads, sets PyAV's log level, and
    with it a callback through which FFmpeg's own decoder threads take the GIL. A frame-threaded
    decoder being closed in one thread (holding the GIL while it waits for its threads) then
    deadlocks with a thread of it logging: seen as an analysis hung for good, its picture and
    sound paths both stopped (PyAV issues 751 and 909).
    """
    av.logging.set_level(None)


def media_origin(container: av.container.InputContainer) -> float:
    """The container's first timestamp in seconds (its earliest stream's start): time 0 of the
    media axis, that frame times, audio samples and words are all measured from."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def stream_delay(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """How long after the file's time 0 a stream starts (a camera's sound or picture may start late)."""
    if stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base) - media_origin(container)


def _is_text(file: Path) -> bool:
    """Text files (playlists, concat lists, subtitles, notes) are never media, but FFmpeg has
    demuxers that would read some of them, following the files they name; refuse them early."""
    with open(file, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the sample
    return True


def _image_size(file: Path) -> tuple[int, int] | None:
    try:
        with Image.open(file) as image:
            if image.format not in IMAGE_FORMATS:
                return None
            image.verify()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """When the stream ends, in seconds from the file's time 0 (a stream that starts late ends later
    than its own length), from the stream or container header; browser-recorded webm has none,
    so then read packet timestamps (demuxing only, no decoding) to find the end."""
    if stream.duration and stream.time_base:
        return stream_delay(container, stream) + float(stream.duration * stream.time_base)
    if container.duration and (container.start_time or 0) <= 0:
        # (a header duration of a file starting later may count from 0, as MKV's does: then read the packets)
        return container.duration / 1_000_000
    last = None
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            last = end if last is None else max(last, end)
    return last - media_origin(container) if last is not None else 0.0  # a file may start at any timestamp


def _reason(exc: av.error.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__
