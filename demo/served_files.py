"""Files the page hands to Gradio (result JSON, face crops), written so no reader ever sees half of one.

Gradio copies each returned file into its cache and serves that copy; these are the
originals it copies from. Each is named after its content and written to a temporary
name, then renamed into place: a visitor analysing the same clip as another writes the
same name, and a rename never truncates a file someone is reading. (Handing Gradio numpy
crops instead makes it write them in place under a content hash, which is what once served
half-written images to concurrent visitors of one clip.)
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

# An original only has to outlive Gradio's copy of it, taken as its answer is sent; a few
# hundred is many times what the concurrent answers of the page (32 crops at most each) hold.
KEPT_FILES = 512


def write_once(folder: Path, data: bytes, kind: str, suffix: str) -> Path:
    """`data` in `folder` under a name made of `kind` and its hash, complete before the name exists."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    with tempfile.NamedTemporaryFile("wb", dir=folder, suffix=".partial", delete=False) as handle:
        handle.write(data)
    Path(handle.name).replace(path)  # atomic; also refreshes the age of a file written before
    return path


def write_image(folder: Path, image: np.ndarray) -> Path:
    """An RGB array as a WebP file (what Gradio's gallery itself would make of it)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP")
    return write_once(folder, buffer.getvalue(), "crop", ".webp")


def prune(folder: Path, keep: int = KEPT_FILES) -> None:
    """Remove all but the newest `keep` files of the folder (leftovers of interrupted writes too)."""
    files = []
    for path in folder.iterdir():
        try:
            files.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # pruned or renamed by a concurrent request meanwhile
            continue
    for _, stale in sorted(files)[:max(0, len(files) - keep)]:
        stale.unlink(missing_ok=True)
