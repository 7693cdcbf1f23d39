"""Turn what a user types into a clean, validated set of labels.

Syntax: labels separated by commas; synonyms of one label joined by `|`
(`happy|joyful`); an optional numeric anchor after `=` (`very negative=-3`) for
sentiment scores. Problems a user can recover from (a stray comma, a duplicate)
become warnings; problems that leave nothing sensible to score are errors.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from merclip.errors import LabelError

MAX_LABELS = 64
MAX_LABEL_CHARS = 200


@dataclass(frozen=True)
class Label:
    """One label: the name shown to users, every wording averaged into its embedding,
    and its sentiment anchor if it has one."""

    name: str
    synonyms: tuple[str, ...]
    anchor: float | None = None


@dataclass(frozen=True)
class LabelSet:
    labels: tuple[Label, ...]
    warnings: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def anchors(self) -> list[float] | None:
        """Numeric anchors of all labels, or None when the labels carry none."""
        if self.labels[0].anchor is None:
            return None
        return [float(label.anchor) for label in self.labels]

    def __len__(self) -> int:
        return len(self.labels)


def parse_labels(labels: str | Sequence[str] | LabelSet) -> LabelSet:
    """Parse `"happy|joyful, sad, neutral"` (or a list of such entries) into a LabelSet."""
    if isinstance(labels, LabelSet):
        return labels
    entries = labels.split(",") if isinstance(labels, str) else [str(entry) for entry in labels]
    warnings: list[str] = []
    parsed: list[Label] = []
    empty = 0
    for entry in entries:
        label = _parse_entry(entry, warnings)
        if label is None:
            empty += 1
        else:
            parsed.append(label)
    if not parsed:
        raise LabelError("no labels given: type one or more labels separated by commas, e.g. 'happy, sad, angry'")
    if empty:
        warnings.append(f"ignored {empty} empty label{'s' if empty > 1 else ''} (check for doubled commas)")
    merged = _merge_duplicates(parsed, warnings)
    if len(merged) > MAX_LABELS:
        raise LabelError(f"{len(merged)} labels given; at most {MAX_LABELS} are allowed")
    with_anchor = sum(label.anchor is not None for label in merged)
    if 0 < with_anchor < len(merged):
        raise LabelError("give a numeric anchor (label=number) to every label or to none")
    return LabelSet(tuple(merged), tuple(warnings))


def _parse_entry(entry: str, warnings: list[str]) -> Label | None:
    text = _clean(entry)
    anchor = None
    if "=" in text:
        text, _, number = text.rpartition("=")
        try:
            anchor = float(number)
        except ValueError:
            raise LabelError(f"label '{_clean(entry)}': the part after '=' must be a number, e.g. 'positive=1'") from None
        if anchor != anchor or anchor in (float("inf"), float("-inf")):
            raise LabelError(f"label '{_clean(entry)}': the anchor must be a finite number")
    synonyms = tuple(dict.fromkeys(s for s in (_clean(part) for part in text.split("|")) if s))
    if not synonyms:
        if anchor is not None:
            raise LabelError(f"label '{_clean(entry)}' has a number but no name")
        return None
    too_long = [s for s in synonyms if len(s) > MAX_LABEL_CHARS]
    if too_long:
        warnings.append(f"label '{too_long[0][:40]}...' is longer than {MAX_LABEL_CHARS} characters; it was cut")
        synonyms = tuple(s[:MAX_LABEL_CHARS].rstrip() for s in synonyms)
    return Label(name=synonyms[0], synonyms=synonyms, anchor=anchor)


def _clean(text: str) -> str:
    """Drop control characters and collapse white space: they carry no meaning in a label."""
    visible = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return re.sub(r"\s+", " ", visible).strip()


def _merge_duplicates(labels: list[Label], warnings: list[str]) -> list[Label]:
    merged: dict[str, Label] = {}
    for label in labels:
        key = label.name.casefold()
        if key not in merged:
            merged[key] = label
            continue
        first = merged[key]
        warnings.append(f"duplicate label '{label.name}' was merged with the first one")
        if label.anchor is not None and label.anchor != first.anchor:
            warnings.append(f"label '{first.name}' has two anchors; kept {first.anchor:g}")
        synonyms = tuple(dict.fromkeys(first.synonyms + label.synonyms))
        merged[key] = Label(first.name, synonyms, first.anchor)
    return list(merged.values())
