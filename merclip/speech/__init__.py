"""Speech to timed words: faster-whisper for a clip, and a Whisper worker process of its own for live mode.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.speech.live_hearing import prepare_live_recognizer
from merclip.speech.transcribe import DEFAULT_WHISPER, SpeechRecognizer

__all__ = ["DEFAULT_WHISPER", "SpeechRecognizer", "prepare_live_recognizer"]
