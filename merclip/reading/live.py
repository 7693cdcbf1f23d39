"""Live mode: one visitor's camera frames (and microphone) scored as they arrive.

Each frame goes the clip path's way, one frame long: the same downscaling as a still picture's, the
same face detector and crop, CLIP on the crop, and the model's own scoring against the cached label
embeddings, so a live frame's probabilities are exactly what an analysis of that frame alone gives.
Bars are smoothed over the last frames (a half-life in seconds, so the speed of the camera does not
change how smooth they are). A frame that arrives while the last one is still being scored is
dropped, never queued: the bars always show the newest face. With the microphone on, each chunk is
checked before it is converted, and what was said is transcribed as soon as the speaker pauses (or
after 4 s of speech without a pause), off the stream's own thread (one Whisper for all visitors,
each with a short queue of their own), and its words and voice join the text and audio stages until
the next utterance (or 4 s of silence) replaces them. The last seconds of frames and sound are kept
(frames as JPEG, sound at the times it was heard) so a full analysis can run on them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import librosa
import numpy as np
import torch
from PIL import Image

from merclip.errors import MerClipError
from merclip.head.inputs import ClipFeatures
from merclip.head.result import Prediction
from merclip.labels.parsing import LabelSet, parse_labels
from merclip.labels.templates import resolve_templates
from merclip.limits import Limits
from merclip.media.acoustic_features import SAMPLE_RATE, audio_frame_features
from merclip.media.audio_decode import is_silent
from merclip.media.frames import within_side
from merclip.media.sample_media import write_clip
from merclip.reading.analyzer import Analyzer
from merclip.speech.live_hearing import live_recognizer, prepare_live_recognizer

HALF_LIFE_SECONDS = 0.5  # a face held for a second moves the bars three quarters of the way
HISTORY_SECONDS = 30.0  # the rolling chart
KEPT_SECONDS = 10.0  # what "analyse the last seconds" can reach back to
HEARING_WINDOW_SECONDS = 4.0  # the most speech transcribed at a time, and the silence that clears the words
PAUSE_SECONDS = 0.5  # this long quieter than the speech ends an utterance: it is transcribed at once
LEAD_SECONDS = 0.25  # kept before an utterance's first loud sound (a soft first consonant)
SPEECH_RMS = 10 ** (-40 / 20)  # a 50 ms stretch louder than -40 dBFS may be speech ...
PAUSE_DROP = 10 ** (-20 / 20)  # ... unless it is 20 dB below the utterance's loudest: a pause
LOUDNESS_HOP = SAMPLE_RATE // 20  # loudness is read per 50 ms
RATE_WINDOW_SECONDS = 5.0  # updates per second, measured over this long
JPEG_QUALITY = 90
KEPT_FRAME_SIDE = 640
# A microphone chunk is checked against these before anything is allocated for it: the browser's chunk
# cannot be trusted (a 40 KB chunk claiming 2 Hz, resampled to 16 kHz, took 3.6 GiB)
MICROPHONE_RATES = (8000, 192000)  # Hz: telephone quality to studio interfaces
MICROPHONE_CHANNELS = 2
MICROPHONE_JITTER_SECONDS = 0.75  # a chunk arriving this late still continues the last one (see _keep_sound)
CHUNK_SECONDS = KEPT_SECONDS  # the longest chunk: all of it is kept
# Utterances of one visitor waiting for the listener (the one Whisper all visitors share): a visitor who
# speaks faster than Whisper hears loses their oldest utterance (and is told), not the others' turn
WAITING_UTTERANCES = 2
LOOP_REPEATS = 3  # a phrase said this many times in a row is a loop of Whisper's (see without_loops)
LOOP_PHRASE_WORDS = 8  # the longest phrase looked for


@dataclass
class LiveReading:
    """One scored frame: its own probabilities and the smoothed ones the bars show."""

    at: float  # seconds since the stream started
    labels: list[str]
    probs: np.ndarray
    smoothed: np.ndarray
    face_found: bool
    latency_ms: float
    prediction: Prediction


# Whisper hears one window at a time for the whole process, off the camera's and the microphone's
# streams: a stream handler never waits for it. On the CPU it runs in a process of its own that yields
# to the frames (see live_hearing), so they keep their speed while it transcribes.
_LISTENER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merclip-live-listen")


class Smoother:
    """Exponential smoothing in time: each reading pulls the state by 1 - 0.5 ** (dt / half_life)."""

    def __init__(self, half_life: float = HALF_LIFE_SECONDS) -> None:
        self.half_life = half_life
        self.state: np.ndarray | None = None
        self._last: float | None = None

    def update(self, values: np.ndarray, at: float) -> np.ndarray:
        if self.state is None or self.state.shape != values.shape or self._last is None:
            self.state = values.astype(float).copy()
        else:
            pull = 1.0 - 0.5 ** (max(at - self._last, 0.0) / self.half_life)
            self.state = self.state + pull * (values - self.state)
        self._last = at
        return self.state.copy()

    def reset(self) -> None:
        self.state, self._last = None, None


class LiveSession:
    """One visitor's stream: their labels, the smoothing, the rolling history, the kept seconds."""

    def __init__(self, analyzer: Analyzer, labels: str | LabelSet,
                 templates: Mapping[str, str] | None = None, detect_faces: bool = True) -> None:
        self.analyzer = analyzer
        self.detect_faces = detect_faces
        self.started = time.monotonic()
        self.smoother = Smoother()
        self.history: deque[tuple[float, tuple[str, ...], np.ndarray]] = deque()
        self.transcript: deque[str] = deque(maxlen=200)
        self.dropped = 0
        self.scored = 0
        self._labels: LabelSet = parse_labels(labels)
        self._templates = dict(templates or {})  # overrides of the model's own, as the clip path takes them
        self._updates: deque[float] = deque()
        self._frames: deque[tuple[float, bytes]] = deque()
        self._sound: deque[tuple[float, np.ndarray]] = deque()  # (start time, 16 kHz samples)
        self._unheard = 0  # samples since the last window handed to Whisper
        self._heard = ClipFeatures()  # the last utterance: its words and voice, for the next frames
        self._fresh = False  # words or voice arrived since the microphone's last chunk
        self._listening: deque[Future] = deque()  # windows handed to Whisper, not yet collected
        self._waiting: deque[Future] = deque()  # of those, the utterances Whisper may not have started yet
        self.skipped_utterances = 0
        self._busy = threading.Lock()
        self._state = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.started

    def set_labels(self, labels: str, templates: Mapping[str, str] | None = None) -> None:
        """New labels (checked here: a LabelError leaves the old ones) for the next frame on."""
        label_set, overrides = parse_labels(labels), dict(templates or {})
        resolve_templates(overrides, base=self.analyzer.model.config.templates)  # a mistake raises here
        with self._state:
            if label_set.labels != self._labels.labels or overrides != self._templates:  # synonyms and anchors too
                self._labels, self._templates = label_set, overrides
                self.smoother.reset()

    @property
    def labels(self) -> list[str]:
        return list(self._labels.names)

    def offer(self, frame: np.ndarray, at: float | None = None) -> LiveReading | None:
        """Score an RGB frame, or drop it (None) if the last one is still being scored."""
        if not self._busy.acquire(blocking=False):
            self.dropped += 1
            return None
        try:
            return self._score(frame, self.now() if at is None else at)
        finally:
            self._busy.release()

    def _score(self, frame: np.ndarray, at: float) -> LiveReading:
        started = time.perf_counter()
        frame = within_side(Image.fromarray(frame), Limits.max_side)  # as a still in a file is
        crops, faces = self.analyzer.face_crops([frame], self.detect_faces)
        features = ClipFeatures(vision=self.analyzer.model.encode_images(crops), frame_times=[at])
        with self._state:
            labels, templates, heard = self._labels, self._templates, self._heard
        features.text, features.text_pooled, features.words = heard.text, heard.text_pooled, heard.words
        features.audio, features.audio_times = heard.audio, heard.audio_times
        prediction = self.analyzer.model.score(features, labels, templates or None)
        probs = np.asarray(prediction.probs)
        with self._state:
            if labels is not self._labels:  # the labels changed while this frame was scored: not its history
                smoothed = probs
            else:
                smoothed = self.smoother.update(probs, at)
                self.history.append((at, tuple(labels.names), smoothed))
            while self.history and self.history[0][0] < at - HISTORY_SECONDS:
                self.history.popleft()
            self.scored += 1
            self._updates.append(at)
            while self._updates and self._updates[0] < at - RATE_WINDOW_SECONDS:
                self._updates.popleft()
            self._keep_frame(frame, at)
        return LiveReading(at, list(labels.names), probs, smoothed, faces[0] is not None,
                           (time.perf_counter() - started) * 1000, prediction)

    def has_frames(self) -> bool:
        """Whether any frame is kept for `recent_clip`."""
        with self._state:
            return bool(self._frames)

    def updates_per_second(self) -> float:
        """Frames scored per second over the last few seconds."""
        with self._state:
            if len(self._updates) < 2:
                return 0.0
            return (len(self._updates) - 1) / max(self._updates[-1] - self._updates[0], 1e-6)

    def _keep_frame(self, frame: np.ndarray, at: float) -> None:
        scale = KEPT_FRAME_SIDE / max(frame.shape[:2])
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            self._frames.append((at, jpeg.tobytes()))
        while self._frames and self._frames[0][0] < at - KEPT_SECONDS:
            self._frames.popleft()

    def hear(self, samples: np.ndarray, rate: int, at: float | None = None) -> bool:
        """Add a chunk of microphone sound that ended at `at`. When it ends an utterance (a pause after
        speech, or 4 s of speech), the utterance goes to Whisper in the background, so neither stream
        waits for it. True when new words or voice arrived since the last chunk (or an utterance of this
        visitor's was dropped untranscribed). A chunk that cannot be microphone sound raises a
        MerClipError."""
        at = self.now() if at is None else at
        mono = microphone_sound(samples, rate)
        self._collect(wait=False)
        with self._state:
            if not self._sound and not self._listening:  # the microphone's first chunk: Whisper gets ready
                self._listening.append(_LISTENER.submit(self._start_hearing))
            self._keep_sound(mono, at)
            window = self._utterance_ended()
            if window is not None and not len(window):  # 4 s of silence: the last words leave the frames
                self._fresh, self._heard = self._fresh or bool(self._heard.modalities), ClipFeatures()
            elif window is not None:
                self._hand_to_whisper(window)
            fresh, self._fresh = self._fresh, False
        return fresh

    def _hand_to_whisper(self, window: np.ndarray) -> None:
        """Queue an utterance behind at most WAITING_UTTERANCES - 1 of this visitor's own (the oldest is
        dropped, and said): the listener takes utterances in order, so another visitor's waits behind at
        most WAITING_UTTERANCES of each visitor's, however fast anyone sends them."""
        waiting = deque(f for f in self._waiting if not f.running() and not f.done())
        while len(waiting) >= WAITING_UTTERANCES:
            oldest = waiting.popleft()
            if oldest.cancel():  # False if Whisper just started it: it is heard
                self._listening.remove(oldest)
                self.skipped_utterances += 1
                self._fresh = True  # a note for the visitor
        heard = _LISTENER.submit(self._listen, window)
        waiting.append(heard)
        self._listening.append(heard)
        self._waiting = waiting

    def settle(self, timeout: float | None = None) -> None:
        """Wait until every utterance handed to Whisper so far has been heard (its failure raises here)."""
        self._collect(wait=True, timeout=timeout)

    def _collect(self, wait: bool, timeout: float | None = None) -> None:
        """Forget finished transcriptions; a failure among them raises once (a stream handler says it)."""
        while self._listening and (wait or self._listening[0].done()):
            failure = self._listening[0].exception(timeout)  # a timeout raises and leaves it to wait for
            self._listening.popleft()
            if failure is not None:
                raise failure

    def _keep_sound(self, mono: np.ndarray, at: float) -> None:
        """Keep a chunk at the time it was heard: right after the last one unless it arrived more than
        MICROPHONE_JITTER_SECONDS after the last one ended, which says the microphone paused (the sound
        itself has no gaps). Browsers send 0.1 s chunks that arrive up to ~0.6 s late and in bursts: placed
        at their arrival times they overlapped and left gaps, and the exported seconds were ~70% silence."""
        start = at - len(mono) / SAMPLE_RATE
        if self._sound:
            last_start, last = self._sound[-1]
            last_end = last_start + len(last) / SAMPLE_RATE
            if start - last_end <= MICROPHONE_JITTER_SECONDS:
                start = last_end
        self._sound.append((start, mono))
        while len(self._sound) > 1 and self._sound[0][0] < at - KEPT_SECONDS:  # the newest stays, however long
            self._sound.popleft()
        self._unheard += len(mono)

    def _utterance_ended(self) -> np.ndarray | None:
        """The sound to transcribe now (from just before its speech), an empty array after 4 s of
        silence, or None while an utterance goes on (or silence has not lasted yet)."""
        window = np.concatenate([s for _, s in self._sound])[-self._unheard:] if self._unheard else np.zeros(0)
        span = _speech_span(window)
        if span is None:
            if len(window) < HEARING_WINDOW_SECONDS * SAMPLE_RATE:
                return None
            self._unheard = int(LEAD_SECONDS * SAMPLE_RATE)  # the lead-in of whatever is said next
            return np.zeros(0, np.float32)
        first, last = span
        paused = len(window) - last >= PAUSE_SECONDS * SAMPLE_RATE
        if not paused and len(window) - first < HEARING_WINDOW_SECONDS * SAMPLE_RATE:
            return None
        self._unheard = 0
        return window[max(0, first - int(LEAD_SECONDS * SAMPLE_RATE)):]

    def _start_hearing(self) -> None:
        """Start live mode's Whisper process (on the listener thread) before the first utterance needs it
        (a no-op when the page started it already, see `LiveService.prepare_in_background`)."""
        prepare_live_recognizer(self.analyzer.recognizer)

    def _listen(self, window: np.ndarray) -> None:
        """Transcribe an utterance (on the listener thread); its words and voice join the next frames."""
        heard = self._features_of(window)
        with self._state:
            self._heard, self._fresh = heard, True
            self.transcript.extend(heard.words)

    def _features_of(self, window: np.ndarray) -> ClipFeatures:
        """A window of sound as the audio and text stages read it (nothing, if it is silent)."""
        if is_silent(window):
            return ClipFeatures()
        audio, audio_times = audio_frame_features(window)
        features = ClipFeatures(audio=torch.from_numpy(audio), audio_times=audio_times.tolist())
        recognizer = live_recognizer(self.analyzer.recognizer)  # on the CPU, a process of its own
        words = without_loops([w.word for w in recognizer.transcribe(window).words]) if recognizer is not None else []
        text = self.analyzer.model.encode_transcript(words) if words else None
        if text is not None:
            features.text, features.text_pooled, features.words = text.elements, text.pooled, text.words
        return features

    def recent_clip(self, path: str | Path, seconds: float = KEPT_SECONDS) -> Path | None:
        """The last `seconds` of frames (and sound, if any) as a video file; None if nothing was kept.
        The clip starts at its first frame; sound is where it was heard on that timeline, silence where
        nothing was, so the analysis pairs words with the faces they were said to."""
        with self._state:
            if not self._frames:
                return None
            end = self._frames[-1][0]
            frames = [(t, jpeg) for t, jpeg in self._frames if t >= end - seconds]
            audio = self._sound_between(frames[0][0], end)
        images = [cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                  for _, jpeg in frames]
        return write_clip(path, _even_sized(images), audio=audio, frame_times=[t - frames[0][0] for t, _ in frames])

    def _sound_between(self, start: float, end: float) -> np.ndarray | None:
        """The sound from `start` to the end of the chunk heard at `end`, each chunk at its time,
        silence between; None if none was heard then."""
        chunks = [(t, s) for t, s in self._sound if t < end and t + len(s) / SAMPLE_RATE > start]
        if not chunks:
            return None
        track = np.zeros(round((chunks[-1][0] - start) * SAMPLE_RATE) + len(chunks[-1][1]), np.float32)
        for t, samples in chunks:
            offset = round((t - start) * SAMPLE_RATE)
            samples = samples[max(0, -offset):]
            offset = max(0, offset)
            track[offset: offset + len(samples)] = samples[: len(track) - offset]
        return track


def microphone_sound(samples: np.ndarray, rate: int) -> np.ndarray:
    """A microphone chunk as 16 kHz mono float32, or a MerClipError saying why it is refused. Its rate,
    type, channels and length are checked before it is converted or resampled, so one chunk costs at
    most a few times CHUNK_SECONDS of 2-channel sound at 192 kHz, whatever its header claims."""
    low, high = MICROPHONE_RATES
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or not low <= rate <= high:
        raise MerClipError(f"microphone sound refused: its sample rate must be a whole number of Hz from {low} "
                           f"to {high}, not {str(rate)[:20]}")
    samples = np.asarray(samples)
    if not (np.issubdtype(samples.dtype, np.signedinteger) or np.issubdtype(samples.dtype, np.floating)):
        raise MerClipError(f"microphone sound refused: its samples must be signed integers or floats, "
                           f"not {samples.dtype}")
    if samples.ndim not in (1, 2) or samples.ndim == 2 and not 1 <= samples.shape[1] <= MICROPHONE_CHANNELS:
        raise MerClipError(f"microphone sound refused: it must be (samples,) or (samples, 1 to {MICROPHONE_CHANNELS} "
                           f"channels), not {samples.shape}")
    if len(samples) > CHUNK_SECONDS * rate:
        raise MerClipError(f"microphone sound refused: a chunk of {len(samples) / rate:.1f} s "
                           f"(at most {CHUNK_SECONDS:.0f} s at a time)")
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused next
        mono = _mono_float(samples)
    if not np.isfinite(mono).all():
        raise MerClipError("microphone sound refused: it holds samples that are not finite numbers")
    if rate == SAMPLE_RATE or not len(mono):
        return mono
    return librosa.resample(mono, orig_sr=int(rate), target_sr=SAMPLE_RATE)


def _mono_float(samples: np.ndarray) -> np.ndarray:
    """Microphone chunks arrive as integers (int16 from the browser) or floats, mono or (n, channels):
    float32 mono in [-1, 1]. Integers are scaled before the channels are averaged (the mean is a float)."""
    scale = np.iinfo(samples.dtype).max if np.issubdtype(samples.dtype, np.integer) else 1.0
    floats = samples.astype(np.float32) / np.float32(scale)
    return floats.mean(axis=1, dtype=np.float32) if floats.ndim == 2 else floats


def without_loops(words: list[str]) -> list[str]:
    """The words with any phrase said LOOP_REPEATS or more times in a row kept once. Whisper, fed a window of
    noise or of speech with holes, can loop one phrase ("if I don't, if I don't, ..." x9 was seen live);
    nobody says a phrase three times running, so the repeats are dropped, the phrase kept."""
    said = [w.lower().strip(".,?!;:") for w in words]
    kept, i = [], 0
    while i < len(words):
        for n in range(1, min(LOOP_PHRASE_WORDS, (len(words) - i) // LOOP_REPEATS) + 1):
            times = 1
            while said[i: i + n] == said[i + times * n: i + (times + 1) * n]:
                times += 1
            if times >= LOOP_REPEATS:
                kept += words[i: i + n]
                i += times * n
                break
        else:
            kept.append(words[i])
            i += 1
    return kept


def _speech_span(window: np.ndarray) -> tuple[int, int] | None:
    """(first, last) sample of the speech in a window: from its first to its last 50 ms louder than
    SPEECH_RMS and not a pause below its loudest; None when nothing is that loud."""
    frames = len(window) // LOUDNESS_HOP
    if not frames:
        return None
    rms = np.sqrt((window[: frames * LOUDNESS_HOP].astype(np.float64).reshape(frames, -1) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > max(SPEECH_RMS, rms.max() * PAUSE_DROP))
    if not len(loud):
        return None
    return int(loud[0]) * LOUDNESS_HOP, (int(loud[-1]) + 1) * LOUDNESS_HOP


def _even_sized(images: list[np.ndarray]) -> list[np.ndarray]:
    """Frames cut to one even size (video encoders need even sides; a camera may change size mid-stream)."""
    height = min(i.shape[0] for i in images) // 2 * 2
    width = min(i.shape[1] for i in images) // 2 * 2
    return [i[:height, :width] for i in images]
