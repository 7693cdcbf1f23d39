"""CLIP's text tower, run by hand: its per-token states, its pooling, and when prompts can be packed.

open_clip's `encode_text` gives one pooled vector per text; MER-CLIP also needs every
token's state (a transcript's words) and passes that cost less than a padded batch
(label prompts packed end to end). These are the pieces both build on.
"""

from __future__ import annotations

import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import text_global_pool

from merclip.clip.loader import ClipBundle
from merclip.errors import MerClipError


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
    x = project(holder, x)
    pooled = text_global_pool(x, tokens, pool_type, eos_token_id=eos_id)
    return x, pooled


def packable_tower(clip: ClipBundle) -> torch.nn.Module | None:
    """The text tower's parts when prompts can be run packed end to end: a plain causal tower
    (no class token, no padding mask) pooled at its end-of-text token; otherwise None."""
    tower, pool_type, _ = _pooling(clip)
    if tower.attn_mask is None or getattr(tower, "cls_emb", None) is not None \
            or getattr(tower, "use_pad_mask", False) or pool_type not in ("argmax", "eos"):
        return None
    return tower


def prompt_ends(clip: ClipBundle, tokens: torch.Tensor) -> torch.Tensor:
    """Each prompt's end-of-text position, found as the tower's pooling finds it. (Counting
    non-zero ids is wrong: id 0 is also a real token, a bare "!" as in "yay!~".)"""
    _, pool_type, eos_id = _pooling(clip)
    return tokens.argmax(dim=1) if pool_type == "argmax" else (tokens == eos_id).int().argmax(dim=1)


def _pooling(clip: ClipBundle) -> tuple[torch.nn.Module, str, int | None]:
    """The module holding the text tower's parts, its pooling type and end-of-text id
    (open_clip.CLIP keeps them on the model itself, other models in `model.text`)."""
    model = clip.model
    tower = getattr(model, "text", None)
    if tower is None:
        return model, model.text_pool_type, getattr(model, "text_eos_id", None)
    return tower, tower.pool_type, getattr(tower, "eos_id", None)


def project(tower: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
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
