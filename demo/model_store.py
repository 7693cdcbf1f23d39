"""Which models the page runs: loaded once, shared by every visitor, kept few.

The start-up choice loads in a background thread so the page is served at once and
says "loading" meanwhile. Visitors can pick other CLIP/Whisper/checkpoint choices
from fixed lists (never a free-typed path: that would let strangers make the server
open its own files); each loads on first use and the least recently used beyond
`max_models` is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from merclip import MerClip, MerClipError, load_model
from merclip.media import SAMPLE_RATE, audio_frame_features
from merclip.reading import Analyzer, DiskCache, SegmentReader
from merclip.speech import DEFAULT_WHISPER

log = logging.getLogger(__name__)

CLIP_CHOICES = ("ViT-B-32:openai", "ViT-B-16:openai", "ViT-L-14:openai", "ViT-B-32:random", "merclip-tiny:random")
WHISPER_CHOICES = ("bundled", "tiny", "base", "small", "none")
NO_CHECKPOINT = "(none: untrained head, CLIP zero-shot)"


@dataclass(frozen=True)
class ModelChoice:
    clip: str
    whisper: str = DEFAULT_WHISPER
    checkpoint: str | None = None


class ModelStore:
    """Analyzers by model choice, loaded on demand, at most `max_models` at once."""

    def __init__(self, default: ModelChoice, device: str = "auto", disk_cache: DiskCache | None = None,
                 checkpoints: dict[str, str] | None = None, max_models: int = 2,
                 place: Callable[[MerClip], MerClip] | None = None) -> None:
        """`place` wraps each loaded model (ZeroGPU runs its forwards elsewhere); with it, only the
        start-up choice is offered, since a ZeroGPU worker knows only the models loaded before it."""
        self.default = default
        self.device = device
        self.place = place
        self.disk_cache = disk_cache
        self.checkpoints = checkpoints or {}
        self.max_models = max_models
        self._models: dict[tuple[str, str | None], MerClip] = {}
        # each analyzer with its utterance reader (which keeps the clips it cut): dropped together
        self._readers: OrderedDict[ModelChoice, SegmentReader] = OrderedDict()
        self._lock = threading.Lock()
        self._errors: dict[ModelChoice, str] = {}
        self._loading = threading.Event()

    @property
    def clip_choices(self) -> list[str]:
        return [self.default.clip] if self.place else list(dict.fromkeys([self.default.clip, *CLIP_CHOICES]))

    @property
    def whisper_choices(self) -> list[str]:
        return [self.default.whisper] if self.place else list(dict.fromkeys([self.default.whisper, *WHISPER_CHOICES]))

    @property
    def checkpoint_choices(self) -> list[str]:
        if self.place:
            return [self.default.checkpoint or NO_CHECKPOINT]
        return [NO_CHECKPOINT, *self.checkpoints]

    def load_default_in_background(self) -> threading.Thread:
        """Load the start-up models and warm librosa and Whisper, without blocking the page."""
        self._loading.set()
        thread = threading.Thread(target=self._warm_up, name="merclip-warm-up", daemon=True)
        thread.start()
        return thread

    def _warm_up(self) -> None:
        try:
            analyzer = self.analyzer(self.default)
            audio_frame_features(np.zeros(SAMPLE_RATE, np.float32))  # compiles librosa's numba code once
            analyzer.recognizer  # noqa: B018 -- loads Whisper now rather than in the first request
        except MerClipError as exc:
            log.warning("merclip: %s", exc)
        finally:
            self._loading.clear()

    def analyzer(self, choice: ModelChoice) -> Analyzer:
        """The analyzer for a choice, loading its models if needed; MerClipError says why it cannot."""
        return self.reader(choice).analyzer

    def reader(self, choice: ModelChoice) -> SegmentReader:
        """The utterance reader of a choice's analyzer, loading its models if needed."""
        if choice.checkpoint == NO_CHECKPOINT:
            choice = replace(choice, checkpoint=None)
        with self._lock:
            if choice in self._readers:
                self._readers.move_to_end(choice)
                return self._readers[choice]
            if self.place and choice != self.default:
                raise MerClipError("this server runs only its start-up models (CLIP "
                                   f"{self.default.clip}, Whisper {self.default.whisper})")
            try:
                model = self._model(choice)
            except MerClipError as exc:
                self._errors[choice] = str(exc)
                raise
            self._errors.pop(choice, None)
            self._readers[choice] = SegmentReader(Analyzer(model, whisper=choice.whisper, disk_cache=self.disk_cache))
            while len(self._readers) > self.max_models:
                self._readers.popitem(last=False)
            live = {id(r.analyzer.model) for r in self._readers.values()}
            for key in [k for k, m in self._models.items() if id(m) not in live]:
                del self._models[key]
            return self._readers[choice]

    def _model(self, choice: ModelChoice) -> MerClip:
        checkpoint = None
        if choice.checkpoint:
            if choice.checkpoint not in self.checkpoints:
                raise MerClipError(f"unknown checkpoint '{choice.checkpoint}'")
            checkpoint = self.checkpoints[choice.checkpoint]
        key = (choice.clip, checkpoint)
        if key not in self._models:
            model = load_model(choice.clip, checkpoint, self.device)
            self._models[key] = self.place(model) if self.place else model
        return self._models[key]

    def find(self, clip_id: str) -> SegmentReader | None:
        """The reader whose analyzer's cache holds this clip."""
        with self._lock:
            readers = list(self._readers.values())
        return next((r for r in readers if r.analyzer.cached(clip_id) is not None), None)

    def status_markdown(self) -> str:
        """What the page says about the start-up model: loading, failed (and how to fix it), or ready."""
        choice = self.default
        if choice in self._errors:
            return f"### No model loaded\n\n{self._errors[choice]}"
        with self._lock:
            reader = self._readers.get(choice)
        if reader is None:
            if self._loading.is_set():
                return f"Loading CLIP `{choice.clip}` and Whisper `{choice.whisper}`… the page works as soon as they are ready."
            return f"CLIP `{choice.clip}` loads with the first analysis."
        clip = reader.analyzer.model.clip
        device = "ZeroGPU slots" if self.place else reader.analyzer.model.device.type
        if clip.random_weights:
            return (f"⚠️ **Plumbing run: CLIP `{clip.spec.text}` (on {device}) has random weights.** Every number on "
                    "this page is meaningless; start the app with real weights to read emotions.")
        return f"Model: CLIP `{clip.spec.text}` on {device}, Whisper `{choice.whisper}`."

    @property
    def loading(self) -> bool:
        return self._loading.is_set()


def find_checkpoints(folder: str | Path | None, explicit: str | None = None) -> dict[str, str]:
    """Checkpoint folders (with config.json and model.safetensors) offered in the page, by display name."""
    found = {}
    if explicit:
        found[Path(explicit).name or explicit] = explicit
    if folder and Path(folder).is_dir():
        for config in sorted(Path(folder).glob("*/config.json")):
            if (config.parent / "model.safetensors").is_file():
                found.setdefault(config.parent.name, str(config.parent))
    return found
