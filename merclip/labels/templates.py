"""Prompt templates: how a label becomes sentences CLIP can read, one set per modality.

Faces are described as photos, speech as things people say, voices by their tone:
each modality's CLIP prior and decoder stage compares its features with the label
phrased for that modality. Users can edit every set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from merclip.errors import LabelError

MODALITIES = ("text", "audio", "vision")
MAX_TEMPLATES = 32
MAX_TEMPLATE_CHARS = 300

DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "vision": (
        "a photo of a {} looking face.",
        "a close-up photo of a person who looks {}.",
        "a face showing {}.",
    ),
    "text": (
        "someone saying something {}.",
        "a {} remark.",
    ),
    "audio": (
        "the voice of someone who sounds {}.",
        "a {} tone of voice.",
    ),
}


def fill(template: str, label: str) -> str:
    """Put a label into a template; `replace` rather than `format`, so braces in labels are harmless."""
    return template.replace("{}", label)


def parse_templates(text: str | Sequence[str], modality: str = "vision") -> tuple[str, ...]:
    """Validate one modality's templates, given as a list or as one string split at `;`."""
    items = text.split(";") if isinstance(text, str) else list(text)
    templates = tuple(t.strip() for t in items if str(t).strip())
    if not templates:
        raise LabelError(f"no {modality} templates given: write at least one, e.g. 'a photo of a {{}} face.'")
    if len(templates) > MAX_TEMPLATES:
        raise LabelError(f"{len(templates)} {modality} templates given; at most {MAX_TEMPLATES} are allowed")
    for template in templates:
        if "{}" not in template:
            raise LabelError(f"{modality} template '{template[:60]}' has no '{{}}' where the label goes")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise LabelError(f"{modality} template '{template[:40]}...' is longer than {MAX_TEMPLATE_CHARS} characters")
    return templates


def resolve_templates(overrides: Mapping[str, str | Sequence[str]] | None = None,
                      base: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """The template set for every modality: `base` (a checkpoint's, else the defaults) with user overrides."""
    result = {m: tuple((base or DEFAULT_TEMPLATES)[m]) for m in MODALITIES}
    for modality, value in (overrides or {}).items():
        if modality not in MODALITIES:
            raise LabelError(f"templates for unknown modality '{modality}' (expected one of {', '.join(MODALITIES)})")
        result[modality] = parse_templates(value, modality)
    return result
