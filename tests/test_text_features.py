"""Per-word text features: the pooled token of the per-token pass is exactly encode_text."""

import torch
import torch.nn.functional as F

from merclip.clip.packed_text import PromptEncoder
from merclip.clip.text_tower import token_features
from merclip.clip.word_features import encode_transcript
from merclip.labels.templates import DEFAULT_TEMPLATES, fill

SENTENCES = ["I can't believe we finally won the game!", "Honestly, this is the worst day of my life."]


def test_pooled_token_equals_encode_text(tiny_model):
    clip = tiny_model.clip
    tokens = clip.tokenizer(SENTENCES)
    with torch.no_grad():
        per_token, pooled = token_features(clip, tokens)
        expected = clip.model.encode_text(tokens)
    used = int((tokens != 0).sum(dim=1).max())
    assert per_token.shape == (2, used, clip.embed_dim), "padding after the longest text is not computed"
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_cutting_padding_changes_no_token_feature(tiny_model):
    clip = tiny_model.clip
    tokens = clip.tokenizer(SENTENCES)
    padded = torch.cat([tokens, torch.zeros(2, 8, dtype=tokens.dtype)], dim=1)[:, : clip.context_length]
    with torch.no_grad():
        short, _ = token_features(clip, tokens)
        model = clip.model  # the full-length pass, as open_clip runs it
        x = model.token_embedding(padded) + model.positional_embedding
        full = model.ln_final(model.transformer(x, attn_mask=model.attn_mask)) @ model.text_projection
    assert torch.allclose(short, full[:, : short.shape[1]], atol=1e-5)


def test_packed_prompts_equal_encode_text(tiny_model):
    """Prompts of uneven length packed end to end (several packed sequences) give open_clip's own embeddings."""
    clip = tiny_model.clip
    prompts = [f"a photo of a {'very ' * (i % 9)}happy face number {i}." for i in range(60)]
    tokens = clip.tokenizer(prompts)
    lengths = (tokens != 0).sum(dim=1)
    assert lengths.min() < lengths.max() and lengths.sum() > 2 * 256, "uneven prompts over several packed sequences"
    with torch.no_grad():
        packed = PromptEncoder(clip).encode(tokens, [()] * len(prompts))
        expected = clip.model.encode_text(tokens)
    assert packed.shape == expected.shape
    assert torch.allclose(packed, expected, atol=1e-5)


def test_prompts_holding_token_zero_equal_encode_text(tiny_model):
    """In CLIP's vocabulary id 0 is a bare "!" (as in "yay!~" or '!",'), not padding."""
    clip = tiny_model.clip
    prompts = ["a photo of a yay!~ looking face.", 'someone saying "wow!", happily.', "a photo of a happy face."]
    tokens = clip.tokenizer(prompts)
    assert all(0 in clip.tokenizer.encode(p) for p in prompts[:2]), "each of the first two holds token 0"
    with torch.no_grad():
        packed = PromptEncoder(clip).encode(tokens, [()] * len(prompts))
        expected = clip.model.encode_text(tokens)
    assert torch.allclose(packed, expected, atol=1e-5)


def test_prompts_reusing_their_templates_opening_equal_encode_text(tiny_model, monkeypatch):
    """The opening tokens' states are computed once per template, then reused for new labels: the
    embeddings stay open_clip's own, and a second set of labels runs only its own tokens."""
    clip = tiny_model.clip
    encoder = PromptEncoder(clip)
    templates = [t for modality in DEFAULT_TEMPLATES.values() for t in modality] + ["a{} fused to the opening."]
    run = []
    original = encoder._layers
    monkeypatch.setattr(encoder, "_layers", lambda ids, *a: run.append(ids.numel()) or original(ids, *a))
    for labels in (["happy", "sad", "very angry"], ["calm", "yay!~"]):
        prompts = [fill(t, label) for label in labels for t in templates]
        tokens = clip.tokenizer(prompts)
        run.clear()
        with torch.no_grad():
            reused = encoder.encode(tokens, [encoder.prefix(t) for _ in labels for t in templates])
            expected = clip.model.encode_text(tokens)
        assert torch.allclose(reused, expected, atol=1e-5)
        all_tokens = int(((tokens != 0).sum(dim=1)).sum())
        assert sum(run) < 0.75 * all_tokens, "the shared openings are not run again for every label"
    assert encoder.prefix("a{} fused to the opening.") == (clip.tokenizer.sot_token_id, *clip.tokenizer.encode("a"))


def test_openings_beyond_the_cache_size_are_still_encoded_right(tiny_model):
    """A call may need more openings than are kept, and later calls need ones dropped meanwhile."""
    clip = tiny_model.clip
    encoder = PromptEncoder(clip, size=2)
    templates = ["a photo of a {} face.", "someone who looks {}.", "the {} voice.", "a close-up of a {} person."]
    for label in ("happy", "sad", "calm"):
        prompts = [fill(t, label) for t in templates]
        tokens = clip.tokenizer(prompts)
        with torch.no_grad():
            reused = encoder.encode(tokens, [encoder.prefix(t) for t in templates])
            expected = clip.model.encode_text(tokens)
        assert torch.allclose(reused, expected, atol=1e-5)
        assert len(encoder._states) == 2


def test_transcript_has_one_feature_per_word_and_its_sentence_embedding(tiny_model):
    clip = tiny_model.clip
    text = SENTENCES[0]
    features = encode_transcript(clip, text)
    assert features.words == text.split()
    assert features.elements.shape == (len(text.split()), clip.embed_dim)
    assert torch.allclose(features.elements.norm(dim=-1), torch.ones(len(features.words)), atol=1e-5)
    with torch.no_grad():
        sentence = clip.model.encode_text(clip.tokenizer([text]), normalize=True)[0]
    assert torch.allclose(features.pooled, sentence, atol=1e-5)


def test_long_transcript_is_split_into_windows_that_fit_the_context(tiny_model):
    clip = tiny_model.clip
    words = [f"word{i % 7}" for i in range(120)]  # far more tokens than the tiny model's 32
    assert all(len(clip.tokenizer.encode(w)) == 2 for w in words)
    features = encode_transcript(clip, " ".join(words))
    assert features.words == words and features.elements.shape[0] == 120

    per_window = (clip.context_length - 2) // 2  # whole words per window
    windows = [" ".join(words[i: i + per_window]) for i in range(0, len(words), per_window)]
    with torch.no_grad():
        window_embeddings = clip.model.encode_text(clip.tokenizer(windows), normalize=True)
    expected = F.normalize(window_embeddings.mean(dim=0), dim=-1)
    assert torch.allclose(features.pooled, expected, atol=1e-5)


def test_text_without_words_is_a_missing_modality(tiny_model):
    assert encode_transcript(tiny_model.clip, "   \n ") is None
