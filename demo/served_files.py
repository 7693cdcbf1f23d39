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
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

# An original only has to outlive Gradio's copy of it, taken as its answer is sent; a few
# hundred is many times what the concurrent answers of the page (32 crops at most each) hold.
KEPT_FILES = 512
ENCODED_IMAGES = 256  # crops whose file names are remembered, so that a re-score does not encode them again
_encoded: OrderedDict[tuple[Path, str], Path] = OrderedDict()
_encoded_lock = threading.Lock()


def write_once(folder: Path, data: bytes, kind: str, suffix: str) -> Path:
    """`data` in `folder` under a name made of `kind` and its hash, complete before the name exists."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    with tempfile.NamedTemporaryFile("wb", dir=folder, suffix=".partial", delete=False) as handle:
        handle.write(data)
    Path(handle.name).replace(path)  # atomic; also refreshes the age of a file written before
    return path


def write_image(folder: Path, image: np.ndarray) -> Path:
    """An RGB array as a WebP file (what Gradio's gallery itself would make of it). An image written
    before and still there is not encoded again (a re-score shows the same crops; hashing a crop
    takes a fraction of a millisecond, encoding it ~10 ms): its file is made the newest instead."""
    key = (folder, hashlib.sha256(image.tobytes() + str(image.shape).encode()).hexdigest())
    with _encoded_lock:
        path = _encoded.get(key)
    if path is not None:
        try:
            os.utime(path)  # kept by `prune` as if written now
            return path
        except FileNotFoundError:  # pruned meanwhile: written again below
            pass
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP")
    path = write_once(folder, buffer.getvalue(), "crop", ".webp")
    with _encoded_lock:
        _encoded[key] = path
        _encoded.move_to_end(key)
        while len(_encoded) > ENCODED_IMAGES:
            _encoded.popitem(last=False)
    return path


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
