"""What a media file holds: its kind and streams, frames sampled over it, its audio decoded, acoustic
features, the face in a frame; and example clips built from packaged media (tests, bench, demo).

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.media.acoustic_features import AUDIO_FEATURE_DIM, SAMPLE_RATE, audio_frame_features
from merclip.media.faces import Face
from merclip.media.probe import inspect_media
from merclip.media.sample_media import (face_frames, recordings, speech_clip, write_clip, write_fake_camera,
                                        write_fake_microphone)

__all__ = ["AUDIO_FEATURE_DIM", "Face", "SAMPLE_RATE", "audio_frame_features", "face_frames", "inspect_media",
           "recordings", "speech_clip", "write_clip", "write_fake_camera", "write_fake_microphone"]
