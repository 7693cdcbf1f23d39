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

from merclip.clip.loader import ClipBundle
from merclip.clip.packed_text import packed_features
from merclip.clip.text_tower import bpe_ids, token_features


@dataclass
class TextFeatures:
    """Per-word features (T x d, normalised) and the sentence embedding (d, normalised)."""

    words: list[str]
    elements: torch.Tensor
    pooled: torch.Tensor
    indices: list[int]  # position of each kept word in the input (words without tokens are dropped)


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
        pooled = F.normalize(packed_features(clip, batch.to(clip.device)).float().cpu(), dim=-1)
    for group in set(owners):
        sentences[group] = F.normalize(pooled[[i for i, g in enumerate(owners) if g == group]].mean(dim=0), dim=-1)
    return sentences


def readable_words(clip: ClipBundle, words: Sequence[str]) -> list[int]:
    """Positions of the words CLIP's tokenizer makes tokens of (the others cannot be encoded).
    Tokenizing needs no model, so an analysis knows its words before any forward runs."""
    return [index for index, word in enumerate(words) if bpe_ids(clip, word)]


def encode_transcript(clip: ClipBundle, text: str | list[str]) -> TextFeatures | None:
    """Per-word features of a transcript (a string, or Whisper's words), split into
    windows that fit the context.

    Returns None when the text has no words: a missing modality, not an empty one.
    """
    given = text.split() if isinstance(text, str) else list(text)
    indices = readable_words(clip, given)
    if not indices:
        return None
    words = [given[i] for i in indices]
    word_ids = [bpe_ids(clip, word)[: clip.context_length - 2] for word in words]
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
