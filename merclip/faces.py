"""Find the largest face in a frame with OpenCV's Haar cascade and crop around it.

Haar cascades ship with OpenCV, need no weights download and take milliseconds on a
CPU; CLIP reads emotion from the face far better than from a whole frame.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

_CASCADE_FILE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
MARGIN = 0.3  # of the face box, on every side: keeps hair, chin and some context
MIN_FACE_FRACTION = 0.08


class FaceCropper:
    """Thread-safe: cascades are not, so each thread gets its own."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _cascade(self) -> cv2.CascadeClassifier:
        if not hasattr(self._local, "cascade"):
            self._local.cascade = cv2.CascadeClassifier(_CASCADE_FILE)
        return self._local.cascade

    def largest_face(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the largest face, or None."""
        height, width = image.shape[:2]
        smallest = max(24, int(MIN_FACE_FRACTION * min(height, width)))
        if min(height, width) < smallest:
            return None
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        faces = self._cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda box: box[2] * box[3])
        return int(x), int(y), int(w), int(h)

    def crop(self, image: np.ndarray) -> np.ndarray | None:
        """A square crop around the largest face with a margin, or None when there is no face."""
        box = self.largest_face(image)
        if box is None:
            return None
        x, y, w, h = box
        side = int(max(w, h) * (1 + 2 * MARGIN))
        cx, cy = x + w // 2, y + h // 2
        height, width = image.shape[:2]
        left, top = max(0, cx - side // 2), max(0, cy - side // 2)
        right, bottom = min(width, left + side), min(height, top + side)
        return np.ascontiguousarray(image[top:bottom, left:right])
