"""Cut a clip into the parts a trained head reads: utterances, or fixed windows.

CMU-MOSI and MOSEI label opinion videos utterance by utterance, so a long clip is read
the same way: sentences from the transcript's words (a sentence ends at . ! ? or at a
pause), the very short ones merged into a neighbour, the long ones split at their
longest pause (never leaving a piece too short). Without speech (or on request) the clip
is cut into fixed windows, each with the words spoken in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from merclip.errors import MerClipError
from merclip.speech.transcribe import Word

SENTENCE_ENDS = (".", "!", "?", "…")
DEFAULT_WINDOW_SECONDS = 4.0


@dataclass(frozen=True)
class Segment:
    """A span of the clip; `words` are indices into the transcript's words spoken in it."""

    start: float
    end: float
    words: tuple[int, ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SegmentRules:
    min_seconds: float = 1.0  # a shorter sentence joins the neighbour it is closest to
    max_seconds: float = 12.0  # a longer one is split at its longest pause
    pause_seconds: float = 0.8  # a silence this long ends an utterance even without punctuation


@dataclass(frozen=True)
class SegmentMode:
    """`utterance`, or `window` with its length in seconds."""

    kind: str
    window_seconds: float = DEFAULT_WINDOW_SECONDS

    @classmethod
    def parse(cls, text: str) -> SegmentMode:
        """`utterance`, `window` or `window:SECONDS` (what `--segments` takes)."""
        kind, _, seconds = text.strip().partition(":")
        if kind == "utterance" and not seconds:
            return cls("utterance")
        if kind == "window":
            try:
                length = float(seconds) if seconds else DEFAULT_WINDOW_SECONDS
            except ValueError:
                length = -1.0
            if 0.5 <= length <= 600:
                return cls("window", length)
            raise MerClipError(f"--segments window:{seconds}: the window must be 0.5 to 600 seconds")
        raise MerClipError(f"--segments {text!r}: expected utterance, window or window:SECONDS")


def utterances(words: Sequence[Word], rules: SegmentRules = SegmentRules()) -> list[Segment]:
    """Sentences of timed words, merged and split by `rules`; words without times give none."""
    timed = _timed(words)
    if not timed:
        return []
    groups: list[list[int]] = [[timed[0]]]
    for previous, index in zip(timed, timed[1:]):
        ends_sentence = words[previous].word.rstrip("\"')]»”’").endswith(SENTENCE_ENDS)
        if ends_sentence or words[index].start - words[previous].end >= rules.pause_seconds:
            groups.append([])
        groups[-1].append(index)
    groups = _merge_short(groups, words, rules.min_seconds)
    return [_segment(group, words) for long in groups for group in _split_long(long, words, rules)]


def windows(duration: float, seconds: float, words: Sequence[Word] = ()) -> list[Segment]:
    """Consecutive windows of `seconds` covering [0, duration] (a last sliver under half a window joins
    the one before), each with the timed words whose middle it holds: a word across a boundary goes
    where most of it was said, and every timed word in the span is in exactly one window."""
    if duration <= 0:
        return []
    edges = [0.0]
    while duration - edges[-1] > seconds * 1.5:
        edges.append(edges[-1] + seconds)
    edges.append(duration)
    spans = [Segment(start, end) for start, end in zip(edges, edges[1:])]
    timed = _timed(words)
    middles = [(words[i].start + words[i].end) / 2 for i in timed]
    return [replace(span, words=tuple(timed[j] for j in within(middles, spans, k))) for k, span in enumerate(spans)]


def within(times: Sequence[float], segments: Sequence[Segment], index: int) -> list[int]:
    """Positions of the times that fall in segment `index`: from its start up to its end, the last
    segment's end included, so a time on a boundary belongs to one segment only."""
    segment, last = segments[index], index == len(segments) - 1
    return [i for i, t in enumerate(times) if segment.start <= t < segment.end or (last and t == segment.end)]


def _timed(words: Sequence[Word]) -> list[int]:
    return [i for i, w in enumerate(words) if w.start is not None and w.end is not None]


def _span(group: list[int], words: Sequence[Word]) -> float:
    return words[group[-1]].end - words[group[0]].start


def _merge_short(groups: list[list[int]], words: Sequence[Word], min_seconds: float) -> list[list[int]]:
    groups = [g for g in groups if g]
    while len(groups) > 1:
        short = min(range(len(groups)), key=lambda i: _span(groups[i], words))
        if _span(groups[short], words) >= min_seconds:
            break
        gaps = {}
        if short > 0:
            gaps[short - 1] = words[groups[short][0]].start - words[groups[short - 1][-1]].end
        if short + 1 < len(groups):
            gaps[short] = words[groups[short + 1][0]].start - words[groups[short][-1]].end
        left = min(gaps, key=gaps.get)  # join the closer neighbour
        groups[left:left + 2] = [groups[left] + groups[left + 1]]
    return groups


def _split_long(group: list[int], words: Sequence[Word], rules: SegmentRules) -> list[list[int]]:
    """`group` cut at its longest pause until no piece is over `max_seconds`, only where both sides
    keep `min_seconds` (a short sentence merged into this group would otherwise be cut off again at
    the pause before it); a group with no such cut stays whole: too short beats too long."""
    if len(group) < 2 or _span(group, words) <= rules.max_seconds:
        return [group]
    cuts = [i for i in range(1, len(group))
            if min(_span(group[:i], words), _span(group[i:], words)) >= rules.min_seconds]
    if not cuts:
        return [group]
    middle = len(group) / 2  # of equal pauses, the one nearest the middle
    cut = max(cuts, key=lambda i: (round(words[group[i]].start - words[group[i - 1]].end, 3), -abs(i - middle)))
    return _split_long(group[:cut], words, rules) + _split_long(group[cut:], words, rules)


def _segment(group: list[int], words: Sequence[Word]) -> Segment:
    return Segment(words[group[0]].start, words[group[-1]].end, tuple(group))
