"""Label prompts packed end to end, reusing their template's opening tokens: new labels cost their own words.

Label prompts are short and of uneven length (7 to 14 tokens for the default templates), so
a padded batch wastes a third of its positions. Under a causal mask they are instead packed
end to end into sequences of about PACKED_TOKENS positions, with a mask that lets each token
see only the earlier tokens of its own prompt and positions that restart for each prompt.

Every prompt of a template starts with the same tokens ("<start> a close-up photo of a person
who looks" is 10 of the 13 tokens of one default prompt). Under CLIP's causal mask a token's
hidden states depend only on the tokens before it, so those opening tokens' states are the
same for every label: they are computed once, kept per layer, and each new prompt runs only
its remaining tokens, attending to the kept states. The default templates share about half of
their tokens this way; the result is `encode_text`'s, up to float rounding.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import ResidualAttentionBlock

from merclip.clip.loader import ClipBundle
from merclip.clip.text_tower import bpe_ids, packable_tower, project, prompt_ends, token_features

PACKED_TOKENS = 256  # per packed sequence: long enough to keep the matrix products efficient, short
                     # enough that the (positions x positions) attention stays small
KEPT_PREFIXES = 256


class PromptEncoder:
    """Encodes prompts with one CLIP text tower, keeping the states of their shared opening tokens."""

    def __init__(self, clip: ClipBundle, size: int = KEPT_PREFIXES) -> None:
        self.clip = clip
        self.size = size
        self._states: OrderedDict[tuple[int, ...], list[torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        tower = packable_tower(clip)
        blocks = [] if tower is None else list(tower.transformer.resblocks)
        usable = tower is not None and all(type(b) is ResidualAttentionBlock and b.attn.batch_first for b in blocks)
        self._tower = tower if usable else None

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def prefix(self, template: str) -> tuple[int, ...]:
        """The tokens every prompt of `template` starts with when its words stand apart from the
        label's: the start token and the words before `{}` (none where nothing is shared)."""
        if self._tower is None or not isinstance(self.clip.tokenizer, SimpleTokenizer):
            return ()
        head = template.split("{}", 1)[0]
        return (self.clip.tokenizer.sot_token_id, *(bpe_ids(self.clip, head) if head.strip() else []))

    def encode(self, tokens: torch.Tensor, prefixes: Sequence[Sequence[int]]) -> torch.Tensor:
        """Pooled (N, d) features of tokenised prompts, equal to `encode_text(tokens)`; `prefixes[i]`
        is the opening that prompt i shares with others (used only where the prompt starts with it
        and has a token after it). Towers that are not plain causal ones take a padded batch."""
        if self._tower is None:
            return token_features(self.clip, tokens)[1]
        lengths = (prompt_ends(self.clip, tokens) + 1).tolist()
        rows = tokens.tolist()
        shared = []
        for row, length, prefix in zip(rows, lengths, prefixes):
            prefix = tuple(prefix)
            fits = 0 < len(prefix) < length and tuple(row[: len(prefix)]) == prefix
            shared.append(prefix if fits else ())
        with self._lock:
            used = [p for p in dict.fromkeys(shared) if p]
            self._keep([p for p in used if p not in self._states])
            states = {p: self._states[p] for p in used}
            for prefix in used:  # the openings in use are the newest; the least recently used go first
                self._states.move_to_end(prefix)
            while len(self._states) > self.size:
                self._states.popitem(last=False)
        pooled, group, used = [], [], 0
        for index, (length, prefix) in enumerate(zip(lengths, shared)):
            if group and used + length - len(prefix) > PACKED_TOKENS:
                pooled.append(self._pass(rows, lengths, shared, group, states))
                group, used = [], 0
            group.append(index)
            used += length - len(prefix)
        pooled.append(self._pass(rows, lengths, shared, group, states))
        return torch.cat(pooled)

    def _keep(self, missing: list[tuple[int, ...]]) -> None:
        """Compute each layer's normalised states of prefixes not kept yet (one packed pass) and keep them."""
        if missing:
            ids = torch.tensor([t for p in missing for t in p], device=self.clip.device)
            owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(missing)])
            positions = torch.cat([torch.arange(len(p)) for p in missing])
            _, normed = self._layers(ids, positions, _causal_within(owner), None)
            ends = torch.tensor([len(p) for p in missing]).cumsum(dim=0)
            for i, prefix in enumerate(missing):
                start = int(ends[i]) - len(prefix)
                self._states[prefix] = [layer[:, start: int(ends[i])] for layer in normed]

    def _pass(self, rows: list[list[int]], lengths: list[int], shared: list[tuple[int, ...]], group: list[int],
              states: dict[tuple[int, ...], list[torch.Tensor]]) -> torch.Tensor:
        """The prompts `group`, their own tokens packed end to end, each attending to its kept opening."""
        openings = list(dict.fromkeys(shared[i] for i in group if shared[i]))
        ids = torch.tensor([t for i in group for t in rows[i][len(shared[i]): lengths[i]]], device=self.clip.device)
        positions = torch.cat([torch.arange(len(shared[i]), lengths[i]) for i in group])
        owner = torch.cat([torch.full((lengths[i] - len(shared[i]),), n) for n, i in enumerate(group)])
        opening_of = torch.cat([torch.full((len(p),), k) for k, p in enumerate(openings)]) if openings \
            else torch.zeros(0, dtype=torch.long)
        own_opening = torch.tensor([openings.index(shared[i]) if shared[i] else -1 for i in group])[owner]
        sees_opening = own_opening[:, None] == opening_of[None, :]
        past = [torch.cat([states[p][layer] for p in openings], dim=1) for layer in range(len(self._blocks))] \
            if openings else None
        visible = torch.cat([sees_opening, _causal_within(owner)], dim=1)
        x, _ = self._layers(ids, positions, visible, past)
        ends = torch.tensor([lengths[i] - len(shared[i]) for i in group]).cumsum(dim=0) - 1
        return project(self._tower, self._tower.ln_final(x)[0, ends.to(x.device)])

    @property
    def _blocks(self) -> list[ResidualAttentionBlock]:
        return list(self._tower.transformer.resblocks)

    def _layers(self, ids: torch.Tensor, positions: torch.Tensor, visible: torch.Tensor,
                past: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The tower's blocks over tokens `ids`, as `ResidualAttentionBlock.forward` runs them, with each
        layer's keys and values extended by `past` (that layer's normalised earlier states)."""
        tower, device = self._tower, self.clip.device
        cast_dtype = tower.transformer.get_cast_dtype()
        x = tower.token_embedding(ids[None]).to(cast_dtype) + tower.positional_embedding[positions.to(device)].to(cast_dtype)
        mask = torch.zeros(visible.shape, dtype=x.dtype, device=device).masked_fill(~visible.to(device), float("-inf"))
        normed = []
        for layer, block in enumerate(self._blocks):
            h = block.ln_1(x)
            normed.append(h)
            keys = h if past is None else torch.cat([past[layer].to(h), h], dim=1)
            x = x + block.ls_1(block.attn(h, keys, keys, need_weights=False, attn_mask=mask)[0])
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        return x, normed


def _causal_within(owner: torch.Tensor) -> torch.Tensor:
    """(N, N) mask: a token sees the earlier tokens of its own prompt (packed prompts, `owner` per token)."""
    order = torch.arange(len(owner))
    return (owner[:, None] == owner[None, :]) & (order[:, None] >= order[None, :])


def packed_features(clip: ClipBundle, tokens: torch.Tensor) -> torch.Tensor:
    """Pooled (N, d) features of texts that share no opening (e.g. utterances), packed end to end."""
    return PromptEncoder(clip).encode(tokens, [()] * len(tokens))
