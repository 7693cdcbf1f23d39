"""From a media file to the model's inputs, once per file content.

Decoding, face crops, audio features, Whisper and the CLIP encoders are the slow
part of an analysis; they depend only on the file and the analysis options, never
on the labels. So they run once per (content hash, options) and are kept in a
bounded LRU: scoring new labels on the same clip only runs the label encoder (itself
cached) and the small decoder.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch

from merclip.api import ForwardCost, MerClip
from merclip.clip.word_features import readable_words
from merclip.errors import MerClipError, first_line
from merclip.head.inputs import ClipFeatures
from merclip.head.result import Prediction
from merclip.labels.parsing import LabelSet, parse_labels
from merclip.limits import Limits
from merclip.media.acoustic_features import audio_frame_features
from merclip.media.audio_decode import decode_audio, is_silent
from merclip.media.faces import Face, FaceDetector, crop_face
from merclip.media.frames import sample_frames
from merclip.media.probe import MediaInfo, inspect_media
from merclip.reading.clip_analysis import ClipAnalysis, ClipReading, Lookup
from merclip.reading.disk_cache import DiskCache
from merclip.reading.forwards import Encoded, Encoding, cost_of, encode_and_score, encode_only, score_many
from merclip.speech.transcribe import DEFAULT_WHISPER, SpeechRecognizer, Transcript, Word, load_whisper

MAX_TRANSCRIPT_CHARS = 20_000

Progress = Callable[[float, str], None]  # (fraction done, what is starting)


@dataclass(frozen=True)
class AnalysisOptions:
    """What changes the heavy part of an analysis (labels and templates do not)."""

    limits: Limits = Limits()
    detect_faces: bool = True
    transcript: str | None = None  # replaces speech recognition when given


@dataclass
class Forwards:
    """What a caller runs in a clip's one model call: `function(model, features, encoding, *args)`, which
    returns (the `Encoded`, the caller's outputs), on `encoding` (what the analysis still needs encoded,
    plus the caller's own), weighing `cost`."""

    function: Callable[..., tuple[Encoded, Any]]
    encoding: Encoding
    args: tuple
    cost: ForwardCost


# The caller's forwards for a clip: given its analysis so far (whole if cached; its CPU part if new) and
# what CLIP still has to encode of it (nothing if cached). None: nothing to run.
Plan = Callable[[ClipAnalysis, Encoding], Forwards | None]


@dataclass
class Analysed:
    """A clip's analysis, whether it came from the cache, what its model call encoded, and the caller's
    outputs of it; or, `held`, what the caller already held of it (then `analysis` may be None)."""

    analysis: ClipAnalysis | None
    cached: bool
    encoded: Encoded
    outputs: Any
    held: bool = False


class Analyzer:
    """Runs analyses with one model and one speech recogniser, caching per file content."""

    def __init__(self, model: MerClip, whisper: str = DEFAULT_WHISPER, cache_size: int = 8,
                 disk_cache: DiskCache | None = None) -> None:
        self.model = model
        self.whisper_spec = whisper
        self.cache_size = cache_size
        self.disk_cache = disk_cache
        self._cache: OrderedDict[str, ClipAnalysis] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._whisper_lock = threading.Lock()
        self._recognizer: SpeechRecognizer | None = None
        self._whisper_error: str | None = None
        self._faces = FaceDetector()

    @property
    def recognizer(self) -> SpeechRecognizer | None:
        """Whisper, loaded on first use (it is only needed for clips with speech). A model that
        failed to load is not retried on every request: the same MerClipError is raised again."""
        with self._whisper_lock:
            if self._whisper_error is not None:
                raise MerClipError(self._whisper_error)
            if self._recognizer is None and self.whisper_spec != "none":
                try:
                    self._recognizer = load_whisper(self.whisper_spec, str(self.model.device))
                except MerClipError as exc:
                    self._whisper_error = str(exc)
                    raise
            return self._recognizer

    def with_empty_cache(self) -> Analyzer:
        """The same loaded models (CLIP, Whisper) with an empty cache: what a new clip meets on a running server."""
        other = Analyzer(self.model, self.whisper_spec, self.cache_size, self.disk_cache)
        other._recognizer = self.recognizer
        return other

    def score(self, media: str | Path, labels: str | Sequence[str] | LabelSet,
              templates: Mapping[str, str | Sequence[str]] | None = None,
              options: AnalysisOptions = AnalysisOptions(), progress: Progress | None = None) -> Prediction:
        """Analyse (or fetch from the cache) and score against labels; a new clip's forwards all
        run in one model call (one GPU slot on ZeroGPU)."""
        labels = parse_labels(labels)  # once, here: the LabelSet travels from here on

        def scored(analysis: ClipAnalysis, encoding: Encoding) -> Forwards:
            return Forwards(encode_and_score, encoding, (None, labels, templates),
                            cost_of(self.model, encoding, 1, labels, templates))

        done = self.analyse_for(media, scored, options, progress)
        return done.analysis.finish(done.outputs[0], done.cached)

    def rescore(self, clip_id: str, labels: str | Sequence[str] | LabelSet,
                templates: Mapping[str, str | Sequence[str]] | None = None) -> Prediction:
        """Score a clip analysed before (by its `clip_id`) against other labels or templates."""
        labels = parse_labels(labels)
        started = time.perf_counter()
        hit = self.cached(clip_id)
        if hit is None:
            raise MerClipError("that clip is no longer in the cache (or was never analysed here): analyse it again")
        analysis = replace(hit, timings_ms={**hit.timings_ms, "cache_lookup": (time.perf_counter() - started) * 1000})
        (prediction,) = self.model.run(score_many, [analysis.features], labels, templates,
                                       cost=cost_of(self.model, Encoding(), 1, labels, templates))
        return analysis.finish(prediction, cached=True)

    def analyse(self, media: str | Path, options: AnalysisOptions = AnalysisOptions(),
                progress: Progress | None = None) -> tuple[ClipAnalysis, bool]:
        """The clip's analysis and whether it came from the cache."""

        def encoded(analysis: ClipAnalysis, encoding: Encoding) -> Forwards | None:
            if encoding.is_empty():  # a cached clip: no model call (no GPU slot) at all
                return None
            return Forwards(encode_only, encoding, (), cost_of(self.model, encoding, 0, None, None))

        done = self.analyse_for(media, encoded, options, progress)
        return done.analysis, done.cached

    def analyse_for(self, media: str | Path, plan: Plan, options: AnalysisOptions = AnalysisOptions(),
                    progress: Progress | None = None, held: Callable[[str], Any] | None = None) -> Analysed:
        """The clip's analysis, from the cache or made now, with the caller's forwards (`plan`) run in the
        same single model call as the analysis' own: one GPU slot on ZeroGPU for all of a new clip. The
        cache is the analyzer's alone: callers ask here, they never look up, read or keep themselves.
        `held(clip_id)`: what the caller already holds of this clip; if anything, nothing is read or run."""
        found = self._lookup(media, options)
        kept = held(found.key) if held is not None else None
        if kept is not None:
            return Analysed(found.analysis, True, Encoded(), kept, held=True)
        reading = None if found.analysis is not None else self._read(found, options, progress)
        so_far = found.analysis or reading.partial
        forwards = plan(so_far, reading.encoding() if reading else Encoding())
        encoded, outputs = Encoded(), None
        if forwards is not None:
            if progress and forwards.encoding.is_empty():
                progress(0.95, "scoring the labels")
            encoded, outputs = self.model.run(forwards.function, so_far.features, forwards.encoding, *forwards.args,
                                              cost=forwards.cost)
        analysis = found.analysis or self._keep(found, reading, encoded)
        return Analysed(analysis, found.analysis is not None, encoded, outputs)

    def reading(self, media: str | Path, options: AnalysisOptions = AnalysisOptions()) -> ClipReading:
        """Everything of a new analysis that needs no model forward, uncached (what `doctor` times a
        ZeroGPU slot on)."""
        return self._read(self._lookup(media, options), options)

    def _lookup(self, media: str | Path, options: AnalysisOptions) -> Lookup:
        """The file checked, its cache key, and its analysis if the memory or disk cache holds it."""
        started = time.perf_counter()
        info = inspect_media(media, options.limits)
        key = _cache_key(_content_hash(info.path), options, self.model, self.whisper_spec)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is None and self.disk_cache is not None:
            hit = self.disk_cache.get(key, info)
            if hit is not None:
                hit.key = key
                self._remember(key, hit)
        if hit is not None:
            lookup_ms = (time.perf_counter() - started) * 1000
            hit = replace(hit, info=info, timings_ms={**hit.timings_ms, "cache_lookup": lookup_ms})
        return Lookup(info, key, hit)

    def _keep(self, found: Lookup, reading: ClipReading, encoded: Encoded) -> ClipAnalysis:
        """The analysis a reading and its forwards make, cached in memory (and on disk if set)."""
        analysis = reading.analysis(encoded)
        analysis.key = found.key
        if self.disk_cache is not None:
            problem = self.disk_cache.put(found.key, analysis)
            if problem:
                analysis.warnings.append(problem)
        self._remember(found.key, analysis)
        return analysis

    def _remember(self, key: str, analysis: ClipAnalysis) -> None:
        with self._cache_lock:
            self._cache[key] = analysis
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def cached(self, clip_id: str) -> ClipAnalysis | None:
        """The analysis kept in memory under this clip_id, if any."""
        with self._cache_lock:
            return self._cache.get(clip_id)

    def cached_clips(self) -> int:
        with self._cache_lock:
            return len(self._cache)

    def _read(self, found: Lookup, options: AnalysisOptions, progress: Progress | None = None) -> ClipReading:
        """Everything of an analysis that needs no model forward. The sound path (decode, features,
        Whisper) runs in a second thread while the picture path (seek, faces, CLIP on the faces) runs
        here: the two overlap instead of adding up.
        Where forwards are gathered into one call (a GPU lent per call) CLIP does not run here:
        the crops are left for that call, with the words CLIP can read."""
        info, limits, steps = found.info, options.limits, _Steps(progress, options.limits.deadline_seconds)
        warnings: list[str] = []
        if info.duration > limits.max_seconds:
            warnings.append(f"the file says it lasts {info.duration:.0f} s; only the first {limits.max_seconds:.0f} s "
                            "were analysed")
        features = ClipFeatures()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merclip-sound")
        try:
            # the request's context goes along: Gradio finds the progress bar's request through it
            sound = pool.submit(contextvars.copy_context().run, self._sound, info, options, limits, steps)
            try:
                times, crops, found, picture_warnings = self._picture(info, options, limits, steps)
                if crops and not self.model.forwards_gathered:  # CLIP on the faces while Whisper runs
                    with steps("clip_image"):
                        features.vision = self.model.encode_images(crops)
            except BaseException:
                steps.stop()  # the sound path ends at its next check; nobody waits for it
                raise
            audio, audio_times, transcript, sound_warnings = sound.result()
        finally:
            pool.shutdown(wait=False)
        warnings += picture_warnings + sound_warnings
        if crops:
            features.frame_times = times
        if audio is not None:
            features.audio, features.audio_times = torch.from_numpy(audio), audio_times.tolist()
        kept = readable_words(self.model.clip, [w.word for w in transcript.words]) if transcript else []
        if kept:  # the words CLIP can read are the ones the text stage shows
            transcript.words = [transcript.words[i] for i in kept]
        if steps.progress:
            steps.progress(0.9, "encoding with CLIP and scoring the labels")
        analysis = ClipAnalysis(info, features, crops, found, options.detect_faces and bool(crops), transcript,
                                warnings, steps.timings)
        return ClipReading(analysis, [w.word for w in transcript.words] if kept else [])

    def _picture(self, info: MediaInfo, options: AnalysisOptions, limits: Limits, steps: _Steps) -> tuple:
        if not info.has_video:
            return [], [], [], ["the file has no picture: the vision stage is skipped"]
        with steps("decode_frames"):
            frames, warnings = sample_frames(info, limits, steps.check)
        with steps("face_detection"):
            crops, found = self.face_crops([f.image for f in frames], options.detect_faces, steps.check)
        found = [face.in_frame(f.source_size) if face else None for face, f in zip(found, frames)]  # the file's pixels
        # only the times go on: a frame's pixels are let go once its face is cropped (240 720p frames are 660 MB)
        return [f.time for f in frames], crops, found, warnings + _face_warnings(found, options.detect_faces)

    def _sound(self, info: MediaInfo, options: AnalysisOptions, limits: Limits, steps: _Steps) -> tuple:
        audio = audio_times = None
        with steps("decode_audio"):
            waveform, warnings = decode_audio(info, limits.max_seconds) if info.kind != "image" else (None, [])
        if waveform is not None and is_silent(waveform):
            warnings.append("the audio track is silent: audio and speech are not analysed")
            waveform = None
        if waveform is not None:
            with steps("audio_features"):
                audio, audio_times = audio_frame_features(waveform)
        transcript = self._transcript(waveform, options, steps, warnings)
        return audio, audio_times, transcript, warnings

    def face_crops(self, images: list[np.ndarray], detect: bool, check: Callable[[], None] = lambda: None
                   ) -> tuple[list[np.ndarray], list[Face | None]]:
        """Each image's face crop (the whole image where no face is found, or with `detect` off) and its face."""
        crops, faces = [], []
        for image in images:
            check()
            face = self._faces.find(image) if detect else None
            crops.append(crop_face(image, face) if face is not None else image)
            faces.append(face)
        return crops, faces

    def _transcript(self, waveform: np.ndarray | None, options: AnalysisOptions, steps: _Steps,
                    warnings: list[str]) -> Transcript | None:
        if options.transcript is not None:
            text = options.transcript
            if len(text) > MAX_TRANSCRIPT_CHARS:
                warnings.append(f"the transcript was cut to its first {MAX_TRANSCRIPT_CHARS} characters")
                text = text[:MAX_TRANSCRIPT_CHARS]
            words = [Word(w, None, None) for w in text.split()]
            return Transcript(" ".join(w.word for w in words), words, source="override") if words else None
        if waveform is None:
            return None
        try:
            recognizer = self.recognizer
        except MerClipError as exc:  # the clip is still worth analysing without its words
            warnings.append(f"speech recognition is unavailable ({exc}): the text stage is skipped")
            return None
        if recognizer is None:
            warnings.append("speech recognition is off (--whisper none): the text stage is skipped")
            return None
        try:
            with steps("transcription"):
                transcript = recognizer.transcribe(waveform, steps.check)
        except RuntimeError as exc:  # CTranslate2 failing on the GPU (a CUDA library missing or broken)
            warnings.append(f"speech recognition failed ({first_line(exc)}): the text stage is skipped")
            return None
        if not transcript.words:
            warnings.append("no speech was recognised: the text stage is skipped")
            return None
        return transcript


def _face_warnings(faces: list[Face | None], detect: bool) -> list[str]:
    missed = sum(face is None for face in faces)
    if not detect or not missed:
        return []
    if missed == len(faces):
        return ["no face found in any frame: whole frames were used"]
    return [f"no face found in {missed} of {len(faces)} frames: whole frames were used there"]


class _Steps:
    """Times each step of an analysis, tells the caller which one is starting, and stops
    the analysis once it runs past its deadline.

    Python cannot kill a thread, so both paths call `check` between steps and inside the
    long ones (per frame, per speech segment): a stopped analysis frees its worker within
    one frame, speech segment or model forward pass of the deadline.
    """

    DESCRIPTIONS = {
        "decode_frames": "decoding video frames", "face_detection": "finding faces", "decode_audio": "decoding audio",
        "audio_features": "computing audio features", "transcription": "transcribing speech",
        "clip_image": "encoding faces with CLIP",
    }

    def __init__(self, progress: Progress | None, deadline_seconds: float) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.allowed = deadline_seconds
        self._deadline = time.monotonic() + deadline_seconds
        self._started = 0
        self._begun: set[str] = set()
        self._stopped = False
        self._lock = threading.Lock()  # the picture and sound paths report from two threads

    def stop(self) -> None:
        """Make every later `check` raise: the other path failed, this one's result is not wanted."""
        self._stopped = True

    def check(self) -> None:
        if self._stopped:
            raise MerClipError("the analysis was stopped: the other path failed")
        if time.monotonic() > self._deadline:
            running = ", ".join(self.DESCRIPTIONS[name] for name in self.DESCRIPTIONS
                                if name not in self.timings and name in self._begun) or "finishing"
            raise MerClipError(f"the analysis was stopped after {self.allowed:g} s, the time allowed per request "
                               f"(while {running}): try a shorter clip or fewer frames")

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        with self._lock:
            self._begun.add(name)  # before the check, so a stop here names the step it did not start
            self.check()
            if self.progress:
                self.progress(0.9 * self._started / len(self.DESCRIPTIONS), self.DESCRIPTIONS[name])
            self._started += 1
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = (time.perf_counter() - started) * 1000


def _cache_key(content_hash: str, options: AnalysisOptions, model: MerClip, whisper_spec: str) -> str:
    """One name for everything the heavy part depends on: the file, the options (the dataclass repr is
    deterministic), the speech recogniser, and what computes the features: CLIP's precision and the kind
    of device (they round differently: fp16 features must not reach an fp32 run), open_clip's version (its
    preprocessing and CLIP code) and the model's fingerprint (FEATURES_VERSION, the CLIP SPEC and the head:
    a clip_id found again must be re-scored by the same head)."""
    numerics = (str(model.clip.dtype), model.device.type, open_clip.__version__)
    return hashlib.sha256(repr((content_hash, options, model.fingerprint, numerics, whisper_spec)).encode()).hexdigest()


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
