"""The model forwards of one user action, gathered into one call.

An analysis alternates CPU work (decoding, face detection, audio features, Whisper) with
CLIP forwards. Doing all the CPU work first and then every forward in one call (CLIP on the
crops, on the words and on each utterance's sentence, then the head on the clip and its
utterances) changes no number, and lets a host that lends its GPU per call, a ZeroGPU
Space, lend it once per click, for a time sized to the work (`ForwardCost`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from merclip.api import ForwardCost
from merclip.clip.word_features import TextFeatures
from merclip.head.inputs import ClipFeatures
from merclip.head.result import Prediction
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates
from merclip.reading.segments import Segment, within


@dataclass
class Encoding:
    """What CLIP still has to encode of a clip: its frames' crops, crops added for short segments
    (at `extra_times`), its transcript's words, and the sentence of each group of `sentence_words`
    (a segment's words; None: no sentences wanted)."""

    crops: list[np.ndarray] = field(default_factory=list)
    extra_crops: list[np.ndarray] = field(default_factory=list)
    extra_times: list[float] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    sentence_words: list[str] = field(default_factory=list)
    groups: list[list[int]] | None = None

    def is_empty(self) -> bool:
        """Nothing for CLIP to encode."""
        return not (self.crops or self.extra_crops or self.words or self.groups)


@dataclass
class Encoded:
    """CLIP's outputs for an `Encoding` (None where there was nothing to encode)."""

    vision: torch.Tensor | None = None
    extra_vision: torch.Tensor | None = None
    text: TextFeatures | None = None
    sentences: torch.Tensor | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # clip_image, clip_text

    def complete(self, features: ClipFeatures) -> ClipFeatures:
        """`features` with what was encoded here filled in."""
        done = replace(features)
        if self.vision is not None:
            done.vision = self.vision
        if self.text is not None:
            done.text, done.text_pooled, done.words = self.text.elements, self.text.pooled, self.text.words
        return done


def encode(model, encoding: Encoding) -> Encoded:
    """Run CLIP on everything an `Encoding` asks for."""
    encoded = Encoded()
    started = time.perf_counter()
    if encoding.crops:
        encoded.vision = model.encode_images(encoding.crops)
    if encoding.extra_crops:
        encoded.extra_vision = model.encode_images(encoding.extra_crops)
    images_done = time.perf_counter()
    if encoding.words:
        encoded.text = model.encode_transcript(encoding.words)
    if encoding.groups is not None and encoding.sentence_words:
        encoded.sentences = model.encode_sentences(encoding.sentence_words, encoding.groups)
    text_done = time.perf_counter()
    if encoding.crops or encoding.extra_crops:
        encoded.timings_ms["clip_image"] = (images_done - started) * 1000
    if encoding.words or encoding.groups:
        encoded.timings_ms["clip_text"] = (text_done - images_done) * 1000
    return encoded


def with_extra_frames(features: ClipFeatures, vision: torch.Tensor | None, times: Sequence[float]) -> ClipFeatures:
    """`features` with more encoded frames, all in time order."""
    if vision is None or features.vision is None:
        return features
    all_vision = torch.cat([features.vision, vision.to(features.vision)])
    all_times = list(features.frame_times) + list(times)
    order = sorted(range(len(all_times)), key=all_times.__getitem__)
    return replace(features, vision=all_vision[order], frame_times=[all_times[i] for i in order])


def segment_features(features: ClipFeatures, segments: list[Segment], sentences: torch.Tensor | None,
                     index: int) -> ClipFeatures:
    """What segment `index` holds of a clip's features: its frames, its audio frames, its words
    (`sentences`: each segment's sentence embedding)."""
    segment = segments[index]
    part = ClipFeatures()
    if features.vision is not None and (frames := within(features.frame_times, segments, index)):
        part.vision, part.frame_times = features.vision[frames], [features.frame_times[i] for i in frames]
    if features.audio is not None and (rows := within(features.audio_times, segments, index)):
        part.audio, part.audio_times = features.audio[rows], [features.audio_times[i] for i in rows]
    if features.text is not None and segment.words:
        words = list(segment.words)
        part.text, part.words = features.text[words], [features.words[i] for i in words]
        part.text_pooled = sentences[index]
    return part


def segmented_features(whole: ClipFeatures, encoded: Encoded, extra_times: Sequence[float],
                       segments: list[Segment]) -> tuple[ClipFeatures, list[ClipFeatures]]:
    """The clip's features with the frames added for short segments, and each segment's own."""
    features = with_extra_frames(whole, encoded.extra_vision, extra_times)
    return features, [segment_features(features, segments, encoded.sentences, i) for i in range(len(segments))]


def encode_and_score(model, features: ClipFeatures, encoding: Encoding, segments: list[Segment] | None,
                     labels, templates: Mapping | None) -> tuple[Encoded, list[Prediction]]:
    """One user action's forwards: encode what is missing, then score the clip (and its `segments`,
    when given) against the labels in one batch. The caller keeps the `Encoded` for re-scoring."""
    encoded = encode(model, encoding)
    whole = encoded.complete(features)
    clips = [whole]
    if segments is not None:
        clips += segmented_features(whole, encoded, encoding.extra_times, segments)[1]
    return encoded, model.score_many(clips, labels, templates)


def encode_only(model, features: ClipFeatures, encoding: Encoding) -> tuple[Encoded, None]:
    """An analysis' own forwards, with nothing to score: CLIP on what is missing."""
    return encode(model, encoding), None


def score_many(model, clips, labels, templates: Mapping | None) -> list[Prediction]:
    """A re-score's forwards: the labels' prompts and the head (the clips are encoded already)."""
    return model.score_many(clips, labels, templates)


def cost_of(model, encoding: Encoding, clips: int, labels, templates: Mapping | None) -> ForwardCost:
    """The `ForwardCost` of encoding `encoding` and scoring `clips` clips against the labels: the
    transcript's windows, each group's sentence and every prompt count as text rows."""
    prompts = 0
    if clips:
        label_set = parse_labels(labels)
        template_sets = resolve_templates(templates, base=model.config.templates)
        names = sum(len(label.synonyms) for label in label_set.labels)
        prompts = names * sum(len(t) for t in template_sets.values())
    context = max(1, model.clip.context_length - 2)
    transcript_rows = -(-len(encoding.words) // (context // 2)) if encoding.words else 0  # words are a token or two
    sentence_rows = len(encoding.groups or [])
    return ForwardCost(images=len(encoding.crops) + len(encoding.extra_crops),
                       text_rows=transcript_rows + sentence_rows + prompts, clips=clips)
