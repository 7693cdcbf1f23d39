"""A long clip read utterance by utterance (or window by window), as CMU-MOSI/MOSEI are cut.

The encoders run once per clip: frames are sampled once over the whole clip, with a budget
that grows with its length (two per shortest utterance, capped), and CLIP image, audio
features and Whisper run once; every segment then indexes into those features. Only the
sentence embedding of each utterance's words needs its own CLIP text pass, and all of them
go in one batch. Segments that the budget left with fewer than two frames get theirs in a
second, small picture pass (frames that start inside them: a variable frame rate may have none
there). A segment with nothing in it (no frame, sound or word) is left out, with a warning, and
the rest of the clip is read as usual. All of a new clip's forwards (CLIP on the crops, the
words and the sentences, then the head on the clip and its segments in one batch) run in one
model call, after the work that needs none (merclip/reading/forwards.py). The whole lot is cached, so
new labels re-score every segment without any encoder; from the first re-score on, each
decoder stage's keys and values (they do not depend on the labels) are kept too (only then:
a command-line run, which never re-scores, does not hold them).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from merclip.head.inputs import ClipFeatures
from merclip.head.prepared import PreparedClips
from merclip.head.result import Prediction
from merclip.labels.parsing import LabelSet, parse_labels
from merclip.limits import Limits
from merclip.media.frames import frames_at
from merclip.media.probe import inspect_media
from merclip.reading.analyzer import AnalysisOptions, Analyzer, Forwards, Progress
from merclip.reading.clip_analysis import ClipAnalysis, SampledFrame
from merclip.reading.forwards import Encoding, cost_of, encode_and_score, score_many, segmented_features
from merclip.reading.segments import Segment, SegmentMode, SegmentRules, utterances, windows, within

FRAME_CAP = 240  # frames sampled over a whole clip at most: memory is bounded by this, not by the length
MANY_FRAMES_SIDE = 960  # with more frames than a clip's usual 32, each is decoded at most this large (240 at 720p: 660 MB)
MIN_SEGMENT_FRAMES = 2
KEPT_CLIPS = 8


@dataclass
class SegmentedClip:
    """A clip's features with its segments; each segment's own features are slices of them."""

    analysis: ClipAnalysis
    features: ClipFeatures  # the analysis' features plus any frames added for short segments
    segments: list[Segment]
    sentences: torch.Tensor | None  # (S, d) sentence embedding of each segment's words
    warnings: list[str]
    parts: list[ClipFeatures]  # each segment's own features
    prepared: PreparedClips | None = None  # the whole clip and its parts ready for any labels, from the first re-score
    extra_frames: list[SampledFrame] = field(default_factory=list)  # the frames added for short segments

    def scorable(self) -> list[ClipFeatures]:
        return [self.analysis.features, *self.parts]

    def text(self, index: int) -> str:
        return " ".join(self.features.words[i] for i in self.segments[index].words)


@dataclass
class SegmentPrediction:
    start: float
    end: float
    text: str
    prediction: Prediction

    def to_dict(self, attention: bool = False) -> dict:
        """A segment's JSON: `probs` is a list aligned with the labels, as the whole clip's is (its
        `labels` say the order once), so one reader serves both."""
        p = self.prediction
        item = {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text, "top_label": p.top_label,
                "probs": [round(x, 6) for x in p.probs], "modalities": p.modalities,
                "sentiment": None if p.sentiment is None else round(p.sentiment, 6)}
        if attention:
            item["stages"] = [s.to_dict() for s in p.stages]
        return item


class SegmentReader:
    """Segments clips with an `Analyzer`'s models and keeps the last few segmented clips for re-scoring."""

    def __init__(self, analyzer: Analyzer, rules: SegmentRules = SegmentRules(), keep: int = KEPT_CLIPS) -> None:
        """`keep`: segmented clips kept for re-scoring (0 where nothing re-scores, e.g. a command-line batch)."""
        self.analyzer = analyzer
        self.rules = rules
        self.keep = keep
        self._kept: OrderedDict[tuple, SegmentedClip] = OrderedDict()
        self._lock = threading.Lock()

    def kept_clips(self) -> int:
        with self._lock:
            return len(self._kept)

    def read(self, media: str | Path, labels: str | LabelSet, mode: SegmentMode,
             templates: dict[str, str] | None = None, options: AnalysisOptions = AnalysisOptions(),
             progress: Progress | None = None, frame_cap: int = FRAME_CAP) -> tuple[Prediction, list[SegmentPrediction]]:
        """The whole clip's prediction and one per segment, on one pass of the encoders (`frame_cap`:
        the most frames sampled over the clip; short segments still get two each). Every model
        forward of a new clip runs in one call, after all the work that needs none."""
        labels = parse_labels(labels)  # once, here: the LabelSet travels from here on
        options = self.budgeted(media, mode, options, frame_cap)
        cut: dict = {}

        def segmented(analysis: ClipAnalysis, encoding: Encoding) -> Forwards:
            """The clip cut into segments, with their sentences and any frames short ones lack, encoded and
            scored with the clip in its one model call."""
            words = encoding.words or analysis.features.words
            segments, warnings = self._cut(analysis, mode, options)
            extra = self._short_segment_frames(analysis, segments, options)
            extra_times = [f.time for f in extra]
            segments, left_out = with_content(segments, [*analysis.features.frame_times, *extra_times,
                                                         *analysis.features.audio_times], bool(words))
            cut.update(segments=segments, warnings=warnings + left_out, extra=extra)
            encoding = replace(encoding, extra_crops=[f.crop for f in extra], extra_times=extra_times,
                               sentence_words=words, groups=[list(s.words) for s in segments] if words else None)
            return Forwards(encode_and_score, encoding, (segments, labels, templates),
                            cost_of(self.analyzer.model, encoding, 1 + len(segments), labels, templates))

        done = self.analyzer.analyse_for(media, segmented, options, progress,
                                         held=lambda clip_id: self._held((clip_id, mode, self.rules)))
        if done.held:  # this clip was read before with these segments
            if progress:
                progress(0.95, "scoring the labels")
            return self._score(done.outputs, labels, templates, cached=True)
        features, parts = segmented_features(done.analysis.features, done.encoded, [f.time for f in cut["extra"]],
                                             cut["segments"])
        clip = SegmentedClip(done.analysis, features, cut["segments"], done.encoded.sentences, cut["warnings"], parts,
                             extra_frames=cut["extra"])
        with self._lock:
            self._kept[(done.analysis.key, mode, self.rules)] = clip
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
        return self._result(clip, done.outputs, cached=done.cached)

    def _held(self, key: tuple) -> SegmentedClip | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
            return kept

    def rescore(self, clip_id: str, labels: str | LabelSet, templates: dict[str, str] | None = None
                ) -> tuple[Prediction, list[SegmentPrediction]] | None:
        """New labels for a clip segmented before (by its clip_id): no encoder runs. None if it is not kept."""
        labels = parse_labels(labels)
        clip = self._kept_clip(clip_id)
        if clip is None:
            return None
        if clip.prepared is None:  # kept from here on: a clip re-scored once is likely re-scored again
            clip.prepared = self.analyzer.model.prepare(clip.scorable())
        return self._score(clip, labels, templates, cached=True)

    def sampled_frames(self, clip_id: str) -> list[SampledFrame]:
        """The frames sampled from an analysed clip, with those added for its short segments, in time
        order (what a page shows as the crops of the clip or of one segment); [] if it is not held."""
        clip = self._kept_clip(clip_id)
        analysis = clip.analysis if clip is not None else self.analyzer.cached(clip_id)
        if analysis is None:
            return []
        extra = clip.extra_frames if clip is not None else []
        return sorted(analysis.sampled_frames() + extra, key=lambda frame: frame.time)

    def _kept_clip(self, clip_id: str) -> SegmentedClip | None:
        with self._lock:
            return next((c for key, c in reversed(self._kept.items()) if key[0] == clip_id), None)

    def _score(self, clip: SegmentedClip, labels: str | LabelSet, templates: dict[str, str] | None,
               cached: bool) -> tuple[Prediction, list[SegmentPrediction]]:
        """The whole clip and every segment through the head in one batch (one GPU slot on ZeroGPU)."""
        clips = clip.prepared or clip.scorable()
        scored = self.analyzer.model.run(score_many, clips, labels, templates,
                                         cost=cost_of(self.analyzer.model, Encoding(), 1 + len(clip.parts),
                                                      labels, templates))
        return self._result(clip, scored, cached)

    def _result(self, clip: SegmentedClip, scored: list[Prediction], cached: bool
                ) -> tuple[Prediction, list[SegmentPrediction]]:
        whole = clip.analysis.finish(scored[0], cached)
        whole.warnings += clip.warnings
        return whole, [SegmentPrediction(s.start, s.end, clip.text(i), p)
                       for i, (s, p) in enumerate(zip(clip.segments, scored[1:]))]

    def budgeted(self, media: str | Path, mode: SegmentMode, options: AnalysisOptions,
                 cap: int = FRAME_CAP) -> AnalysisOptions:
        """`options` with the frame budget of this clip's length (at most `cap` frames)."""
        limits = options.limits
        if cap <= limits.frames:  # no room to grow (the page's budget): no need to probe the file for its length
            return options
        span = min(inspect_media(media, limits).duration, limits.max_seconds)
        budget = min(cap, frame_budget(span, mode, self.rules, limits.frames))
        side = limits.max_side if budget <= Limits.max_frames else min(limits.max_side, MANY_FRAMES_SIDE)
        return replace(options, limits=replace(limits, frames=budget, max_frames=max(limits.max_frames, budget),
                                               max_side=side))

    def _cut(self, analysis: ClipAnalysis, mode: SegmentMode, options: AnalysisOptions
             ) -> tuple[list[Segment], list[str]]:
        """The clip's utterances (or windows, each with its words), and a warning when utterances
        were asked for but there is no timed speech."""
        warnings = []
        words = analysis.transcript.words if analysis.transcript else []
        segments = utterances(words, self.rules) if mode.kind == "utterance" else []
        if mode.kind == "utterance" and not segments:
            warnings.append(f"no timed speech to cut into utterances: {mode.window_seconds:g} s windows instead")
        if not segments:
            segments = windows(read_span(analysis, options.limits.max_seconds), mode.window_seconds, words)
        return segments, warnings

    def _short_segment_frames(self, analysis: ClipAnalysis, segments: list[Segment], options: AnalysisOptions
                              ) -> list[SampledFrame]:
        """Times and crops of more frames for the segments that hold fewer than two: the frames on
        screen at their thirds, kept only if new and starting inside a segment that asked (with a
        variable frame rate the frame on screen may have started segments earlier)."""
        times, info = analysis.features.frame_times, analysis.info
        if not times or not info.has_video or info.kind == "image":
            return []
        short = [i for i in range(len(segments)) if len(within(times, segments, i)) < MIN_SEGMENT_FRAMES]
        wanted = [segments[i].start + segments[i].seconds * k / 3 for i in short for k in (1, 2)]
        sampled = set(times)
        frames = [f for f in (frames_at(info, wanted, options.limits) if wanted else [])
                  if f.time not in sampled and any(within([f.time], segments, i) for i in short)]
        if not frames:
            return []
        crops, faces = self.analyzer.face_crops([f.image for f in frames], options.detect_faces)
        return [SampledFrame(f.time, crop, face) for f, crop, face in zip(frames, crops, faces)]


def read_span(analysis: ClipAnalysis, max_seconds: float) -> float:
    """How far the clip's media was actually read: its last frame, audio frame or word (at most
    `max_seconds`). Not the header's duration: a header may claim 2,000,000 s of a 3 s file (or
    0 s of a long one), and windows past the media's end would hold nothing."""
    words = analysis.transcript.words if analysis.transcript else []
    features = analysis.features
    ends = [*features.frame_times, *features.audio_times, *(w.end for w in words if w.end is not None)]
    return min(max(ends, default=0.0), max_seconds)


def with_content(segments: list[Segment], times: list[float], words: bool) -> tuple[list[Segment], list[str]]:
    """The segments holding an element time (a frame, an audio frame) or, when the words are read
    (`words`), a word; and a warning naming the others, which have nothing to score: one empty
    span of a file must not fail the file."""
    full = [bool(words and s.words) or bool(within(times, segments, i)) for i, s in enumerate(segments)]
    empty = [f"{s.start:.1f}-{s.end:.1f} s" for s, has in zip(segments, full) if not has]
    warning = f"nothing to analyse in {', '.join(empty)} (no frame, sound or word there): left out of the segments"
    return [s for s, has in zip(segments, full) if has], [warning] if empty else []


def frame_budget(span: float, mode: SegmentMode, rules: SegmentRules, least: int) -> int:
    """Two frames per shortest segment (any span that long holds two), at least `least`."""
    shortest = rules.min_seconds if mode.kind == "utterance" else min(rules.min_seconds, mode.window_seconds)
    return max(least, math.ceil(span / (shortest / MIN_SEGMENT_FRAMES)))
