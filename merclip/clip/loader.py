"""Load a CLIP model from a SPEC string onto the right device.

SPEC forms (docs/design.md): `ARCH:PRETRAINED` (open_clip tag, downloaded from the hub),
`ARCH:/path/to/weights`, `hf-hub:ORG/NAME`, `ARCH:random` (seeded, so anyone can
rebuild the same weights) and `merclip-tiny:random` (a tiny config for tests).
CLIP is built as its weights were trained: a tag's pretrained config says whether they were
trained with QuickGELU (OpenAI's and some LAION runs) and open_clip only warns when the
architecture disagrees, so we follow the tag. An `hf-hub:` repo carries its own config,
activation included. A local file says nothing: it gets the architecture's config, so weights
trained with QuickGELU need the `-quickgelu` architecture (e.g. `ViT-B-32-quickgelu:/path`).
Offline, hub loading fails at once with a message that says how to provide weights,
instead of open_clip's long retry loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

import open_clip
import torch

from merclip.errors import MerClipError, first_line
from merclip.host.hub import offline_if_hub_unreachable

DEFAULT_CLIP = "ViT-B-32:openai"
TINY_ARCH = "merclip-tiny"
RANDOM_SEED = 0
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")

open_clip.add_model_config(Path(__file__).parent / "model_configs")


def how_to_provide_weights(arch: str = "ViT-B-32") -> str:
    """The advice every weights error ends with. A file has no tag to say how its weights were
    trained, so it names the QuickGELU architecture where open_clip has one."""
    quick = f"{arch}-quickgelu"
    quick_hint = f"; {quick}:/path for weights trained with QuickGELU, like OpenAI's" if quick in open_clip.list_models() else ""
    return (
        f"Provide them as a local open_clip weights file (--clip {arch}:/path/to/open_clip_model.safetensors{quick_hint}), "
        f"connect to the internet so open_clip can download them once, "
        f"or use --clip {arch}:random for a plumbing run whose predictions are meaningless."
    )


@dataclass(frozen=True)
class ClipSpec:
    """A parsed SPEC: which architecture, and where its weights come from."""

    text: str
    arch: str
    source: str  # "random" | "tag" | "file" | "hub"
    weights: str | None = None

    @property
    def random_weights(self) -> bool:
        return self.source == "random"


def parse_clip_spec(spec: str) -> ClipSpec:
    """Check a SPEC string and say clearly what is wrong with it."""
    text = spec.strip()
    if text.startswith("hf-hub:"):
        if not text[len("hf-hub:"):].count("/") == 1:
            raise MerClipError(f"CLIP spec '{spec}': expected hf-hub:ORG/NAME")
        return ClipSpec(text, text, "hub", text)
    arch, sep, weights = text.partition(":")
    if not sep or not arch or not weights:
        raise MerClipError(
            f"CLIP spec '{spec}': expected ARCH:WEIGHTS, e.g. {DEFAULT_CLIP}, ViT-B-32:random, "
            "ViT-B-32:/path/to/weights.safetensors or hf-hub:ORG/NAME"
        )
    if arch not in open_clip.list_models():
        close = get_close_matches(arch, open_clip.list_models(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MerClipError(f"CLIP spec '{spec}': unknown architecture '{arch}'{hint}")
    if weights == "random":
        return ClipSpec(text, arch, "random")
    if _looks_like_path(weights):
        return ClipSpec(text, arch, "file", str(Path(weights).expanduser()))
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if weights not in tags:
        known = ", ".join(tags) if tags else "none"
        raise MerClipError(
            f"CLIP spec '{spec}': '{weights}' is neither a file nor a pretrained tag of {arch} "
            f"(known tags: {known}; or use {arch}:random)"
        )
    return ClipSpec(text, arch, "tag", weights)


def _looks_like_path(weights: str) -> bool:
    return (
        "/" in weights
        or "\\" in weights
        or weights.startswith("~")
        or weights.lower().endswith(_WEIGHT_SUFFIXES)
        or os.path.exists(weights)
    )


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present; a forced device that is missing is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise MerClipError(f"device '{name}': expected auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MerClipError(f"device '{name}' was requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


@dataclass
class ClipBundle:
    """A frozen CLIP model with everything needed to feed it."""

    spec: ClipSpec
    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    dtype: torch.dtype
    embed_dim: int
    context_length: int
    logit_scale: float
    logit_bias: float | None

    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights

    @property
    def device(self) -> torch.device:
        """Where the weights are now: a ZeroGPU worker receives them on its GPU after start-up."""
        return next(self.model.parameters()).device


def default_precision(device: torch.device) -> str:
    """Half precision on CUDA (CLIP was trained that way and it halves memory), full on the CPU."""
    return "fp16" if device.type == "cuda" else "fp32"


def load_clip(spec: str = DEFAULT_CLIP, device: str = "auto", precision: str | None = None) -> ClipBundle:
    """Build the CLIP model a SPEC names, frozen and in eval mode.

    `precision` ("fp16" or "fp32") overrides the device's `default_precision`, e.g. to check the
    GPU's numbers on a CPU.
    The model is built and read on the CPU, then moved: on a ZeroGPU Space the main process
    only has stand-ins for CUDA tensors, whose values cannot be read there.
    """
    parsed = parse_clip_spec(spec)
    target = resolve_device(device)
    precision = precision or default_precision(target)
    model, preprocess = _create(parsed, torch.device("cpu"), precision)
    model.eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(parsed.arch)
    logit_bias = getattr(model, "logit_bias", None)
    bundle = ClipBundle(
        spec=parsed,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        dtype=torch.float16 if precision == "fp16" else torch.float32,
        embed_dim=_embed_dim(model, tokenizer),
        context_length=int(tokenizer.context_length),
        logit_scale=float(model.logit_scale.exp().item()),
        logit_bias=None if logit_bias is None else float(logit_bias.item()),
    )
    model.to(target)
    return bundle


def _create(spec: ClipSpec, device: torch.device, precision: str) -> tuple[torch.nn.Module, Callable]:
    if spec.source == "random":
        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(RANDOM_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.arch, pretrained=None, device=device, precision=precision
            )
        return model, preprocess
    if spec.source == "file":
        if not os.path.isfile(spec.weights):
            raise MerClipError(f"CLIP weights file not found: {spec.weights}")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.arch, pretrained=spec.weights, device=device, precision=precision, weights_only=True
            )
        except Exception as exc:  # open_clip raises RuntimeError/KeyError/pickle errors here
            raise MerClipError(
                f"CLIP weights file {spec.weights} could not be loaded as {spec.arch}: {first_line(exc)}"
            ) from exc
        return model, preprocess
    with offline_if_hub_unreachable() as offline, _quiet_root_logger():
        try:
            if spec.source == "hub":
                model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, device=device, precision=precision)
            else:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.arch, pretrained=spec.weights, device=device, precision=precision,
                    force_quick_gelu=trained_with_quick_gelu(spec.arch, spec.weights),
                )
        except Exception as exc:  # download, cache and format errors all surface here
            arch = "ViT-B-32" if spec.source == "hub" else spec.arch
            reason = (
                "they are not in the local cache and the Hugging Face hub cannot be reached (offline)"
                if offline() else first_line(exc)
            )
            raise MerClipError(f"CLIP weights '{spec.text}' could not be loaded: {reason}. {how_to_provide_weights(arch)}") from exc
    return model, preprocess


def trained_with_quick_gelu(arch: str, tag: str) -> bool:
    """Whether the tag's weights were trained with QuickGELU: open_clip keeps the architecture's
    activation (GELU for `ViT-B-32`) and only warns when the tag disagrees, which shifts every feature."""
    return bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu"))


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """open_clip logs to the root logger what we report better ourselves: 'initialized
    randomly' (which is what was asked for) and download failures (raised as MerClipError)."""
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _embed_dim(model: torch.nn.Module, tokenizer: Callable) -> int:
    """Ask the model rather than its config: text towers name their projection differently."""
    with torch.no_grad():
        return int(model.encode_text(tokenizer(["a"])).shape[-1])
