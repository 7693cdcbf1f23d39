"""Label embeddings: each label phrased by a modality's templates, encoded by CLIP.

Prompt embeddings are normalised, averaged over templates and synonyms, and
re-normalised, exactly as open_clip's zero-shot classifier does, so an untrained
MER-CLIP reproduces CLIP zero-shot. Results are cached by (model, templates, label):
re-scoring a clip with a label seen before costs no text forward pass.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from merclip.clip.loader import ClipBundle
from merclip.clip.packed_text import PromptEncoder
from merclip.clip.text_tower import bpe_ids
from merclip.errors import LabelError
from merclip.labels.parsing import Label
from merclip.labels.templates import fill

_BATCH = 256
MAX_PROMPTS = 4096  # per request: ~20 s of ViT-B-32 text tower on 2 CPU cores; the defaults make 7 per label


class LabelEncoder:
    """Encodes labels with one CLIP model and remembers what it has encoded."""

    def __init__(self, clip: ClipBundle, cache_size: int = 4096) -> None:
        self.clip = clip
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()  # the app scores several requests at once
        self._prompts = PromptEncoder(clip)

    def clear(self) -> None:
        """Forget every encoded label and template opening (benchmarks measure a cold label encoder this way)."""
        with self._lock:
            self._cache.clear()
        self._prompts.clear()

    def encode(self, labels: Sequence[Label], templates: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
        """(K, d) normalised label embeddings on the CLIP device, plus warnings about cut labels."""
        rows, warnings = self.encode_sets(labels, {"": templates})
        return rows[""], warnings

    def encode_sets(self, labels: Sequence[Label], template_sets: Mapping[str, Sequence[str]]
                    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """(K, d) embeddings under each named template set; every prompt not cached yet goes
        through CLIP in one batch, whatever set it belongs to."""
        prompts = sum(len(t) for t in template_sets.values()) * sum(len(label.synonyms) for label in labels)
        if prompts > MAX_PROMPTS:
            raise LabelError(f"these labels, synonyms and templates make {prompts} prompts; at most {MAX_PROMPTS} "
                               "are encoded per request: use fewer synonyms or templates")
        warnings: list[str] = []
        keys = {}
        for name, templates in template_sets.items():
            templates = tuple(templates)
            fitted = [tuple(self._fit(s, templates, warnings) for s in label.synonyms) for label in labels]
            keys[name] = [(self.clip.spec.text, templates, synonyms) for synonyms in fitted]
        with self._lock:
            missing = list(dict.fromkeys(k for rows in keys.values() for k in rows if k not in self._cache))
            if missing:
                self._encode_missing(missing)
            result = {}
            for name, rows in keys.items():
                for key in rows:
                    self._cache.move_to_end(key)
                result[name] = torch.stack([self._cache[key] for key in rows])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result, list(dict.fromkeys(warnings))

    def _encode_missing(self, keys: list[tuple]) -> None:
        prompts, prefixes, owners = [], [], []
        for index, (_, templates, synonyms) in enumerate(keys):
            for synonym in synonyms:
                for template in templates:
                    prompts.append(fill(template, synonym))
                    prefixes.append(self._prompts.prefix(template))
                    owners.append(index)
        features = []
        with torch.no_grad():
            for start in range(0, len(prompts), _BATCH):
                tokens = self.clip.tokenizer(prompts[start: start + _BATCH]).to(self.clip.device)
                pooled = self._prompts.encode(tokens, prefixes[start: start + _BATCH])
                features.append(F.normalize(pooled.float(), dim=-1))
        embeddings = torch.cat(features)
        owner = torch.tensor(owners, device=embeddings.device)
        for index, key in enumerate(keys):
            mean = embeddings[owner == index].mean(dim=0)
            self._cache[key] = F.normalize(mean, dim=-1)

    def _fit(self, label: str, templates: tuple[str, ...], warnings: list[str]) -> str:
        """Cut a label by whole words until every filled prompt fits CLIP's context, and say so.
        Each prompt is measured as filled (a template may hold `{}` twice); a template that leaves
        no room for even one character of a label is refused, since it would erase every label."""
        capacity = self.clip.context_length - 2

        def overflowing(text: str) -> list[str]:
            return [t for t in templates if len(bpe_ids(self.clip, fill(t, text))) > capacity]

        if crowded := overflowing(label[:1]):
            raise LabelError(f"template '{crowded[0][:40]}...' leaves no room for a label in CLIP's "
                               f"{self.clip.context_length}-token context: shorten it")
        words = label.split(" ")
        fitted = label
        while fitted and overflowing(fitted):
            words = words[:-1] if len(words) > 1 else [words[0][: len(words[0]) // 2]]
            fitted = " ".join(words).strip()
        if fitted != label:
            warnings.append(
                f"label '{label[:40]}' is too long for CLIP's {self.clip.context_length}-token context; "
                f"it was cut to '{fitted}'"
            )
        return fitted or label[:1]
