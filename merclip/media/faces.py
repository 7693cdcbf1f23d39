"""Find the face in a frame with MTCNN and crop around it.

MTCNN (Zhang et al., 2016) as packaged by facenet-pytorch: a cascade of three small
CNNs whose weights (2 MB, MIT licence) ship inside the package's wheel, so nothing is
downloaded. It scores every candidate, and the most confident face is kept, not the
largest box: OpenCV's Haar cascade, used before, kept its largest detection and so
sometimes cropped a space shuttle beside the face (71% of crops on the face in
tests/face_scenes.py, against 100% now). It runs on the CPU on frames at most 640 px
on their longest side (tens of milliseconds a frame); boxes are given in the frame's
own pixels, and each face names that frame's size, so a box found on a frame decoded
smaller than its file can be put back in the file's pixels (`Face.in_frame`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from PIL import Image

MARGIN = 0.3  # of the face box, on every side: keeps hair, chin and some context
MIN_FACE_FRACTION = 0.08  # of the frame's shorter side: smaller "faces" are not what the clip is about
MIN_SCORE = 0.9  # MTCNN's final-stage probability
DETECTION_SIDE = 640  # frames are searched at most this large (the cost grows with the area)
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)  # facenet-pytorch's defaults for its three networks
PYRAMID_FACTOR = 0.709


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of a picture of `frame_size`, before the crop margin
    score: float
    frame_size: tuple[int, int]  # width, height of the picture the box is measured in

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "frame_size": list(self.frame_size)}

    def to_list(self) -> list:
        """The face as [x, y, w, h, score, frame width, frame height] (the disk cache's layout)."""
        return [*self.box, self.score, *self.frame_size]

    @classmethod
    def from_list(cls, values: list) -> Face:
        """The inverse of `to_list`; a list of another layout (an older cache entry) raises ValueError."""
        x, y, w, h, score, width, height = values
        return cls((int(x), int(y), int(w), int(h)), float(score), (int(width), int(height)))

    def in_frame(self, size: tuple[int, int]) -> Face:
        """The same box on the same picture shown at another `size` (width, height): frames are
        searched downscaled, but a box means something to a reader only in the file's own pixels."""
        scale_x, scale_y = size[0] / self.frame_size[0], size[1] / self.frame_size[1]
        x, y, w, h = self.box
        return Face((round(x * scale_x), round(y * scale_y), round(w * scale_x), round(h * scale_y)), self.score,
                    size)


class FaceDetector:
    """Thread-safe; the three networks load on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._networks: tuple[torch.nn.Module, ...] | None = None

    def find(self, image: np.ndarray) -> Face | None:
        """The most confident face in an RGB frame, or None when there is none."""
        from facenet_pytorch.models.utils.detect_face import detect_face

        height, width = image.shape[:2]
        scale = min(1.0, DETECTION_SIDE / max(height, width))
        searched = image if scale == 1.0 else np.asarray(
            Image.fromarray(image).resize((max(1, round(width * scale)), max(1, round(height * scale)))))
        smallest = max(20.0, MIN_FACE_FRACTION * min(searched.shape[:2]))
        if min(searched.shape[:2]) < smallest:
            return None
        with torch.inference_mode():
            boxes, _ = detect_face(np.ascontiguousarray(searched), smallest, *self._nets(), list(STAGE_THRESHOLDS),
                                   PYRAMID_FACTOR, "cpu")
        found = np.asarray(boxes[0]).reshape(-1, 5)
        found = found[found[:, 4] >= MIN_SCORE]
        if len(found) == 0:
            return None
        x1, y1, x2, y2, score = found[np.argmax(found[:, 4])]
        x1, y1 = max(0.0, x1 / scale), max(0.0, y1 / scale)
        x2, y2 = min(float(width), x2 / scale), min(float(height), y2 / scale)
        return Face((round(x1), round(y1), round(x2 - x1), round(y2 - y1)), float(score), (width, height))

    def _nets(self) -> tuple[torch.nn.Module, ...]:
        with self._lock:
            if self._networks is None:
                from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

                weights = resources.files("facenet_pytorch") / "data"
                networks = []
                for network, name in ((PNet, "pnet"), (RNet, "rnet"), (ONet, "onet")):
                    model = network(pretrained=False)
                    with resources.as_file(weights / f"{name}.pt") as path:
                        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                    networks.append(model.eval())
                self._networks = tuple(networks)
            return self._networks


def crop_face(image: np.ndarray, face: Face) -> np.ndarray:
    """A square crop around the face with a margin, clipped to the frame."""
    x, y, w, h = face.box
    side = int(max(w, h) * (1 + 2 * MARGIN))
    cx, cy = x + w // 2, y + h // 2
    height, width = image.shape[:2]
    left, top = max(0, cx - side // 2), max(0, cy - side // 2)
    right, bottom = min(width, left + side), min(height, top + side)
    return np.ascontiguousarray(image[top:bottom, left:right])
