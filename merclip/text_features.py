"""CLIP text features kept per word, so the decoder can attend to each word.

The text tower runs once per context window; the final hidden state of every token
goes through `text_projection` into the joint space. The end-of-text token of that
same pass is exactly `encode_text`, which gives the sentence embedding for the CLIP
prior. A word's feature is the mean of its BPE tokens' features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import text_global_pool

from merclip.clip_loader import ClipBundle
from merclip.errors import MerClipError


@dataclass
class TextFeatures:
    """Per-word features (T x d, normalised) and the sentence embedding (d, normalised)."""

    words: list[str]
    elements: torch.Tensor
    pooled: torch.Tensor
    indices: list[int]  # position of each kept word in the input (words without tokens are dropped)


def bpe_ids(clip: ClipBundle, text: str) -> list[int]:
    """BPE token ids of a text, without start/end tokens."""
    tokenizer = clip.tokenizer
    if not isinstance(tokenizer, SimpleTokenizer):
        raise MerClipError(
            f"{clip.spec.arch} uses a {type(tokenizer).__name__}; per-word text features need CLIP's BPE tokenizer"
        )
    return tokenizer.encode(text)


def token_features(clip: ClipBundle, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the text tower once: (B, L, d) per-token features in the joint space and the
    pooled (B, d) feature, which equals `encode_text(tokens)`.

    With CLIP's causal mask a token never sees the padding after it, so the padding is cut
    off before the pass: a 12-token prompt costs 12 positions instead of 77, same result.
    L is the longest used length in the batch.
    """
    model = clip.model
    tower = getattr(model, "text", None)
    if tower is None:  # open_clip.CLIP keeps the text tower's parts on the model itself
        tokens = _trim_padding(tokens, causal=model.attn_mask is not None)
        length = tokens.shape[1]
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
        mask = None if model.attn_mask is None else model.attn_mask[:length, :length]
        x = model.ln_final(model.transformer(x, attn_mask=mask))
    else:
        if getattr(tower, "cls_emb", None) is not None or not hasattr(tower, "_embeds"):
            raise MerClipError(f"{clip.spec.arch}: per-token text features are not supported for this text tower")
        tokens = _trim_padding(tokens, causal=tower.attn_mask is not None and not getattr(tower, "use_pad_mask", False))
        x, attn_mask = tower._embeds(tokens)
        if attn_mask is not None and attn_mask.shape[-1] != x.shape[1]:
            attn_mask = attn_mask[..., : x.shape[1], : x.shape[1]]
        x = tower.ln_final(tower.transformer(x, attn_mask=attn_mask))
    holder, pool_type, eos_id = _pooling(clip)
    x = _project(holder, x)
    pooled = text_global_pool(x, tokens, pool_type, eos_token_id=eos_id)
    return x, pooled


def prompt_features(clip: ClipBundle, tokens: torch.Tensor) -> torch.Tensor:
    """The pooled (N, d) features of many short prompts, equal to `encode_text(tokens)`.

    Label prompts are short and of uneven length (7 to 14 tokens for the default
    templates), so a padded batch wastes a third of its positions. Under a causal mask
    the prompts are instead packed end to end into sequences of about `_PACKED_TOKENS`
    positions, with a mask that lets each token see only the earlier tokens of its own
    prompt and positions that restart at 0 for each prompt: the same maths, no padding.
    Towers that are not plain causal ones take the padded batch.
    """
    tower, pool_type, eos_id = _pooling(clip)
    if tower.attn_mask is None or getattr(tower, "cls_emb", None) is not None \
            or getattr(tower, "use_pad_mask", False) or pool_type not in ("argmax", "eos"):
        return token_features(clip, tokens)[1]
    # Each prompt ends at its end-of-text token, found as the tower's pooling finds it. (Counting
    # non-zero ids is wrong: id 0 is also a real token, a bare "!" as in "yay!~".)
    ends = tokens.argmax(dim=1) if pool_type == "argmax" else (tokens == eos_id).int().argmax(dim=1)
    lengths = (ends + 1).tolist()
    pooled, group, used = [], [], 0
    for row, length in enumerate(lengths):
        if group and used + length > _PACKED_TOKENS:
            pooled.append(_packed_pass(tower, tokens, group, lengths))
            group, used = [], 0
        group.append(row)
        used += length
    pooled.append(_packed_pass(tower, tokens, group, lengths))
    return torch.cat(pooled)


_PACKED_TOKENS = 256  # per packed sequence: long enough to keep the matrix products efficient, short
                      # enough that the (positions x positions) attention stays small


def _packed_pass(tower: torch.nn.Module, tokens: torch.Tensor, rows: list[int],
                 lengths: list[int]) -> torch.Tensor:
    device = tokens.device
    ids = torch.cat([tokens[row, : lengths[row]] for row in rows])[None]
    positions = torch.cat([torch.arange(lengths[row], device=device) for row in rows])
    prompt = torch.cat([torch.full((lengths[row],), i, device=device) for i, row in enumerate(rows)])
    order = torch.arange(len(prompt), device=device)
    visible = (prompt[:, None] == prompt[None, :]) & (order[:, None] >= order[None, :])
    cast_dtype = tower.transformer.get_cast_dtype()
    mask = torch.zeros(visible.shape, dtype=cast_dtype, device=device).masked_fill(~visible, float("-inf"))
    x = tower.token_embedding(ids).to(cast_dtype) + tower.positional_embedding[positions].to(cast_dtype)
    x = tower.ln_final(tower.transformer(x, attn_mask=mask))
    ends = torch.tensor([lengths[row] for row in rows], device=device).cumsum(dim=0) - 1
    return _project(tower, x[0, ends])


def _pooling(clip: ClipBundle) -> tuple[torch.nn.Module, str, int | None]:
    """The module holding the text tower's parts, its pooling type and end-of-text id
    (open_clip.CLIP keeps them on the model itself, other models in `model.text`)."""
    model = clip.model
    tower = getattr(model, "text", None)
    if tower is None:
        return model, model.text_pool_type, getattr(model, "text_eos_id", None)
    return tower, tower.pool_type, getattr(tower, "eos_id", None)


def _project(tower: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Final hidden states into the joint space (`tower` as `_pooling` returns it)."""
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def _trim_padding(tokens: torch.Tensor, causal: bool) -> torch.Tensor:
    """Drop the trailing columns that are padding (id 0) in every row; only safe under a causal mask."""
    if not causal:
        return tokens
    used = (tokens != 0).any(dim=0).nonzero()
    return tokens[:, : int(used.max()) + 1] if len(used) else tokens


def sentence_features(clip: ClipBundle, words: Sequence[str], groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """(G, d) normalised sentence embeddings of groups of words (positions in `words`), all in one
    CLIP batch: the text of each utterance of a clip. A group without words gets a zero row."""
    rows, owners = [], []
    for group, positions in enumerate(groups):
        word_ids = [ids[: clip.context_length - 2] for ids in (bpe_ids(clip, words[p]) for p in positions) if ids]
        windows = _windows(word_ids, clip.context_length - 2) if word_ids else []
        rows += [[i for w in window for i in word_ids[w]] for window in windows]
        owners += [group] * len(windows)
    sentences = torch.zeros(len(groups), clip.embed_dim)
    if not rows:
        return sentences
    batch = _token_rows(clip, rows)
    with torch.no_grad():
        pooled = F.normalize(prompt_features(clip, batch.to(clip.device)).float().cpu(), dim=-1)
    for group in set(owners):
        sentences[group] = F.normalize(pooled[[i for i, g in enumerate(owners) if g == group]].mean(dim=0), dim=-1)
    return sentences


def encode_transcript(clip: ClipBundle, text: str | list[str]) -> TextFeatures | None:
    """Per-word features of a transcript (a string, or Whisper's words), split into
    windows that fit the context.

    Returns None when the text has no words: a missing modality, not an empty one.
    """
    words, word_ids, indices = [], [], []
    for index, word in enumerate(text.split() if isinstance(text, str) else text):
        ids = bpe_ids(clip, word)
        if ids:
            words.append(word)
            word_ids.append(ids[: clip.context_length - 2])
            indices.append(index)
    if not words:
        return None
    windows = _windows(word_ids, clip.context_length - 2)
    batch = _token_rows(clip, [[i for w in window for i in word_ids[w]] for window in windows])
    with torch.no_grad():
        per_token, pooled = token_features(clip, batch.to(clip.device))
    per_token, pooled = per_token.float(), pooled.float()
    word_features = []
    for row, window in enumerate(windows):
        position = 1  # after the start token
        for w in window:
            count = len(word_ids[w])
            word_features.append(per_token[row, position: position + count].mean(dim=0))
            position += count
    elements = F.normalize(torch.stack(word_features), dim=-1)
    sentence = F.normalize(F.normalize(pooled, dim=-1).mean(dim=0), dim=-1)
    return TextFeatures(words=words, elements=elements, pooled=sentence, indices=indices)


def _token_rows(clip: ClipBundle, rows: list[list[int]]) -> torch.Tensor:
    """Token id rows (each fits the context with its start and end tokens) as a padded (N, context) batch."""
    batch = torch.zeros(len(rows), clip.context_length, dtype=torch.long)
    for row, ids in enumerate(rows):
        batch[row, : len(ids) + 2] = torch.tensor([clip.tokenizer.sot_token_id, *ids, clip.tokenizer.eot_token_id])
    return batch


def _windows(word_ids: list[list[int]], capacity: int) -> list[list[int]]:
    """Group word indices greedily into windows of at most `capacity` tokens, never splitting a word."""
    windows: list[list[int]] = [[]]
    used = 0
    for index, ids in enumerate(word_ids):
        if used + len(ids) > capacity and windows[-1]:
            windows.append([])
            used = 0
        windows[-1].append(index)
        used += len(ids)
    return windows
