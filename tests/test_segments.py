"""Utterances from timed words, and windows: the cuts a long clip is read by."""

import pytest

from merclip.errors import MerClipError
from merclip.reading.segments import SegmentMode, SegmentRules, utterances, windows
from merclip.speech.transcribe import Word


def timed(*sentences: tuple[float, str], gap: float = 0.25) -> list[Word]:
    """Words of each sentence 0.3 s long with `gap` between them, each sentence starting at its time."""
    words = []
    for start, text in sentences:
        t = start
        for token in text.split():
            words.append(Word(token, t, t + 0.3))
            t += 0.3 + gap
    return words


def texts(words, segments):
    return [" ".join(words[i].word for i in s.words) for s in segments]


def test_sentences_become_utterances_with_their_own_times():
    words = timed((0.0, "I got the job."), (3.0, "Then the car broke down!"), (7.0, "Is that fair?"))
    found = utterances(words)
    assert texts(words, found) == ["I got the job.", "Then the car broke down!", "Is that fair?"]
    assert [(s.start, s.end) for s in found] == [(0.0, pytest.approx(1.95)), (3.0, pytest.approx(5.5)),
                                                 (7.0, pytest.approx(8.4))]


def test_a_pause_ends_an_utterance_without_punctuation():
    words = timed((0.0, "so anyway we went home"), (4.0, "and nobody said a thing"))
    assert texts(words, utterances(words)) == ["so anyway we went home", "and nobody said a thing"]


def test_a_very_short_sentence_joins_its_closer_neighbour():
    words = timed((0.0, "Well."), (0.6, "I think it went fine in the end."), (6.0, "Yes."), (6.5, "Right, so then."))
    found = utterances(words, SegmentRules(min_seconds=1.0))
    assert texts(words, found) == ["Well. I think it went fine in the end.", "Yes. Right, so then."]
    assert all(s.seconds >= 1.0 for s in found)


def test_a_long_sentence_is_split_at_its_longest_pause():
    first, second = " ".join(["word"] * 20), " ".join(["other"] * 20)  # 10.75 s each, 0.6 s apart
    words = timed((0.0, first))
    words += timed((words[-1].end + 0.6, second + "."))
    assert texts(words, utterances(words, SegmentRules(max_seconds=12.0))) == [first, second + "."]
    halves = utterances(words, SegmentRules(max_seconds=8.0))  # then evenly paused: cut near the middle
    assert [len(s.words) for s in halves] == [10, 10, 10, 10] and all(s.seconds <= 8.0 for s in halves)


def test_a_short_sentence_merged_and_then_split_still_joins_a_neighbour():
    """Defect 9 of issue 25: "Yes." joined the long sentence before it, the joined utterance was over
    12 s, and the split cut at the pause before "Yes." again: a 0.4 s utterance (12.20-12.60 s)."""
    words = timed((0.0, " ".join(["word"] * 21) + "."))  # 0.00-11.30 s, pauses of 0.25 s
    words += [Word("Yes.", 12.2, 12.6)]  # 0.9 s after it: the closer neighbour
    words += timed((13.6, "And then we all went home."))
    rules = SegmentRules(min_seconds=1.0, max_seconds=12.0)
    found = utterances(words, rules)
    assert all(rules.min_seconds <= s.seconds <= rules.max_seconds for s in found), [(s.start, s.end) for s in found]
    assert sorted(i for s in found for i in s.words) == list(range(len(words))), "every word once"
    assert texts(words, found)[-1] == "And then we all went home."


def test_a_long_utterance_with_no_cut_leaving_both_sides_long_enough_stays_whole():
    words = [Word("Looooong", 0.0, 12.5), Word("yes.", 13.0, 13.3)]
    assert [(s.start, s.end) for s in utterances(words, SegmentRules(min_seconds=1.0, max_seconds=12.0))] == [
        (0.0, 13.3)]


def test_words_without_times_give_no_utterances():
    assert utterances([Word("typed", None, None), Word("text", None, None)]) == []


def test_windows_cover_the_clip_and_absorb_a_last_sliver():
    assert [(s.start, s.end) for s in windows(10.0, 4.0)] == [(0.0, 4.0), (4.0, 10.0)]
    assert [(s.start, s.end) for s in windows(13.0, 4.0)] == [(0.0, 4.0), (4.0, 8.0), (8.0, 13.0)]
    assert [(s.start, s.end) for s in windows(3.0, 4.0)] == [(0.0, 3.0)]
    assert windows(0.0, 4.0) == []


def test_each_timed_word_goes_to_the_window_holding_its_middle():
    """Defect 4 of issue 25: windows were built without words, so no window had text."""
    words = [Word("one", 0.2, 0.6), Word("two", 3.7, 4.1), Word("three", 3.9, 4.5), Word("typed", None, None),
             Word("four", 7.6, 8.0), Word("five", 9.8, 10.0)]
    found = windows(10.0, 4.0, words)
    assert [(s.start, s.end) for s in found] == [(0.0, 4.0), (4.0, 10.0)]
    assert texts(words, found) == ["one two", "three four five"], "two's middle (3.9 s) in the first, 10 s in the last"
    assert windows(10.0, 4.0, [Word("typed", None, None)])[0].words == (), "a word without a time is in no window"


@pytest.mark.parametrize(("flag", "kind", "seconds"), [("utterance", "utterance", 4.0), ("window", "window", 4.0),
                                                        ("window:2.5", "window", 2.5)])
def test_the_segments_flag(flag, kind, seconds):
    mode = SegmentMode.parse(flag)
    assert (mode.kind, mode.window_seconds) == (kind, seconds)


@pytest.mark.parametrize("flag", ["sentence", "window:0", "window:abc", "utterance:3"])
def test_a_bad_segments_flag_is_one_clear_line(flag):
    with pytest.raises(MerClipError, match="--segments"):
        SegmentMode.parse(flag)
