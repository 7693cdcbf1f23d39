"""Label and template validation, synonym averaging and the label-embedding cache."""

import pytest
import torch
import torch.nn.functional as F

from merclip import MerClipError, parse_labels
from merclip.clip.packed_text import PromptEncoder
from merclip.labels.parsing import MAX_LABELS
from merclip.labels.templates import parse_templates, resolve_templates


def test_synonyms_and_anchors_are_parsed():
    labels = parse_labels("happy|joyful=1 , very  negative=-3, calm=0.5")
    assert labels.names == ["happy", "very negative", "calm"]
    assert labels.labels[0].synonyms == ("happy", "joyful")
    assert labels.anchors == [1.0, -3.0, 0.5]
    plain = parse_labels(["happy", "sad"])
    assert plain.anchors is None and plain.warnings == ()


def test_anchors_must_be_all_or_none():
    assert parse_labels("neg=-1, neu=0, pos=1").anchors == [-1.0, 0.0, 1.0]
    with pytest.raises(MerClipError, match="every label or to none"):
        parse_labels("neg=-1, neutral")
    with pytest.raises(MerClipError, match="must be a number"):
        parse_labels("happy=very")
    with pytest.raises(MerClipError, match="finite"):
        parse_labels("happy=nan, sad=1")


@pytest.mark.parametrize("labels", ["", "   ", ", ,", [], ["", " "], "|, |"])
def test_no_labels_is_an_error(labels):
    with pytest.raises(MerClipError, match="no labels given"):
        parse_labels(labels)


def test_empty_entries_are_dropped_with_a_warning():
    labels = parse_labels("happy, , sad,")
    assert labels.names == ["happy", "sad"]
    assert any("2 empty labels" in w for w in labels.warnings)


def test_duplicates_are_merged_with_a_warning():
    labels = parse_labels("Happy, sad, happy|glad")
    assert labels.names == ["Happy", "sad"]
    assert labels.labels[0].synonyms == ("Happy", "happy", "glad")
    assert any("duplicate label 'happy'" in w for w in labels.warnings)


def test_label_count_limit():
    assert len(parse_labels([f"label {i}" for i in range(MAX_LABELS)])) == MAX_LABELS
    with pytest.raises(MerClipError, match=f"at most {MAX_LABELS}"):
        parse_labels([f"label {i}" for i in range(MAX_LABELS + 1)])


def test_control_characters_and_extra_space_are_removed():
    assert parse_labels("ha\x00ppy\n  face\t").names == ["ha ppy face"]


def test_templates_need_a_placeholder():
    assert parse_templates("a photo of a {} face.; {} voice") == ("a photo of a {} face.", "{} voice")
    with pytest.raises(MerClipError, match="no '\\{\\}'"):
        parse_templates("a photo of a face.")
    with pytest.raises(MerClipError, match="no vision templates"):
        parse_templates(" ; ")
    with pytest.raises(MerClipError, match="unknown modality 'smell'"):
        resolve_templates({"smell": "{}"})


def test_braces_in_labels_are_harmless(tiny_model):
    embeddings, _ = tiny_model.labels.encode(parse_labels("{0} happy {x}").labels, ("a {} face.",))
    assert torch.isfinite(embeddings).all()


def test_too_long_label_is_cut_to_fit_the_context_with_a_warning(tiny_model):
    long_label = " ".join(["extraordinarily"] * 40)
    templates = ("a photo of a {} looking face.",)
    embeddings, warnings = tiny_model.labels.encode(parse_labels(long_label).labels, templates)
    assert len(warnings) == 1 and "too long" in warnings[0]
    cut = warnings[0].split("cut to '")[1].rstrip("'")
    tokens = tiny_model.clip.tokenizer.encode(templates[0].replace("{}", cut))
    assert len(tokens) <= tiny_model.clip.context_length - 2
    expected, _ = tiny_model.labels.encode(parse_labels(cut).labels, templates)
    assert torch.allclose(embeddings, expected)


def test_a_template_with_two_placeholders_is_measured_filled(tiny_model):
    """The label fits once in the context but not twice: it is cut, with a warning, until the filled prompt fits."""
    label = " ".join(["happy"] * 20)
    templates = ("a face.", "{} and again {}")
    capacity = tiny_model.clip.context_length - 2
    assert len(tiny_model.clip.tokenizer.encode(label)) < capacity < len(tiny_model.clip.tokenizer.encode(label * 2))
    _, warnings = tiny_model.labels.encode(parse_labels(label).labels, templates)
    assert len(warnings) == 1 and "too long" in warnings[0], warnings
    cut = warnings[0].split("cut to '")[1].rstrip("'")
    assert len(tiny_model.clip.tokenizer.encode(templates[1].replace("{}", cut))) <= capacity


def test_a_template_that_fills_the_context_by_itself_is_refused(tiny_model):
    crowded = "a photo of " + "a very " * 15 + "{} face."
    assert len(crowded) < 300, "within the template length limit"
    with pytest.raises(MerClipError, match="leaves no room for a label"):
        tiny_model.labels.encode(parse_labels("happy, sad").labels, ("a {} face.", crowded))


def test_synonyms_are_normalised_averaged_and_renormalised(tiny_model):
    clip = tiny_model.clip
    templates = ("a photo of a {} face.", "someone who looks {}.")
    embeddings, _ = tiny_model.labels.encode(parse_labels("happy|joyful").labels, templates)
    prompts = [t.replace("{}", word) for word in ("happy", "joyful") for t in templates]
    with torch.no_grad():
        each = clip.model.encode_text(clip.tokenizer(prompts), normalize=True)
    assert torch.allclose(embeddings[0], F.normalize(each.mean(dim=0), dim=-1), atol=1e-6)


def test_label_embeddings_are_cached_per_template_set(tiny_model, monkeypatch):
    calls = []
    original = PromptEncoder.encode
    monkeypatch.setattr(PromptEncoder, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    labels = parse_labels("cache-test-a, cache-test-b").labels
    first, _ = tiny_model.labels.encode(labels, ("{} one",))
    assert len(calls) == 1
    again, _ = tiny_model.labels.encode(labels, ("{} one",))
    assert len(calls) == 1 and torch.equal(first, again)
    other, _ = tiny_model.labels.encode(labels, ("{} two",))
    assert len(calls) == 2 and not torch.allclose(first, other)


def test_typed_labels_are_parsed_once_per_action_then_travel_as_a_label_set(tiny_model, astronaut, tmp_path,
                                                                           monkeypatch):
    """The typed string was parsed three times on its way to the scores (issue 36): once, at the entry."""
    import merclip.labels.parsing as parsing
    from merclip.reading import Analyzer, SegmentMode, SegmentReader

    parsed, parse_entry = [], parsing._parse_entry
    monkeypatch.setattr(parsing, "_parse_entry", lambda entry, warnings: parsed.append(entry)
                        or parse_entry(entry, warnings))
    path = tmp_path / "face.png"
    astronaut.save(path)
    analyzer = Analyzer(tiny_model, whisper="none")
    first = analyzer.score(path, "happy, sad, calm")
    assert parsed == ["happy", " sad", " calm"]
    parsed.clear()
    analyzer.rescore(first.clip_id, "proud, bored")
    assert parsed == ["proud", " bored"]
    parsed.clear()
    SegmentReader(analyzer).read(path, "tense, shy", SegmentMode.parse("window:4"))
    assert parsed == ["tense", " shy"]
