"""Clip analyses kept on disk, so a restarted app or a second CLI run skips the encoders.

One safetensors file per analysis: tensors for the encoder outputs and face crops,
everything else as JSON in the file's metadata. Safetensors cannot run code, so a
tampered cache folder cannot execute anything. The cache is best-effort: a corrupt
entry is deleted and recomputed, an unwritable folder turns into a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from merclip.head.inputs import ClipFeatures
from merclip.head.tensor_files import read_tensor_file, write_tensor_file
from merclip.media.faces import Face
from merclip.media.probe import MediaInfo
from merclip.reading.clip_analysis import ClipAnalysis
from merclip.speech.transcribe import Transcript

SUFFIX = ".analysis.safetensors"
META_KEY = "analysis"


class DiskCache:
    """A folder of at most `max_entries` analyses; the least recently used go first."""

    def __init__(self, folder: str | os.PathLike, max_entries: int = 256) -> None:
        self.folder = Path(folder)
        self.max_entries = max_entries

    def get(self, key: str, info: MediaInfo) -> ClipAnalysis | None:
        """The analysis stored under `key`, or None when there is none or it cannot be read."""
        path = self._path(key)
        try:
            tensors, meta = read_tensor_file(path, META_KEY)
            analysis = _decode(tensors, meta, info)
            os.utime(path)  # mark as recently used
            return analysis
        except FileNotFoundError:
            return None
        except (OSError, SafetensorError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # corrupt or from another version: recompute
            return None

    def put(self, key: str, analysis: ClipAnalysis) -> str | None:
        """Store an analysis; returns a warning instead of raising when the folder is unusable."""
        tensors, meta = analysis.features.to_tensors()
        tensors.update({f"crop_{i}": torch.from_numpy(np.array(c)) for i, c in enumerate(analysis.crops)})
        meta |= {
            "crops": len(analysis.crops), "face_detection": analysis.face_detection,
            "faces": [face.to_list() if face else None for face in analysis.faces], "warnings": analysis.warnings,
            "timings_ms": analysis.timings_ms, "transcript": analysis.transcript.to_dict() if analysis.transcript else None,
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_tensor_file(self._path(key), tensors, meta, META_KEY)
            self._evict()
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as SafetensorError
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
            return f"the disk cache folder {self.folder} cannot be used ({reason}); results are not kept on disk"
        return None

    def entries(self) -> list[Path]:
        """Stored analyses, least recently used first."""
        return sorted(self.folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)

    def _evict(self) -> None:
        for stale in self.entries()[: -self.max_entries]:
            stale.unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"


def _decode(tensors: dict[str, torch.Tensor], meta: dict, info: MediaInfo) -> ClipAnalysis:
    features = ClipFeatures.from_tensors(tensors, meta)
    crops = [tensors[f"crop_{i}"].numpy() for i in range(meta["crops"])]
    transcript = Transcript.from_dict(meta["transcript"]) if meta["transcript"] else None
    faces = [Face.from_list(face) if face else None for face in meta["faces"]]
    return ClipAnalysis(info, features, crops, faces, bool(meta["face_detection"]), transcript, list(meta["warnings"]),
                        dict(meta["timings_ms"]))
