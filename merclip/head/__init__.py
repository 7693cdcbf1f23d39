"""The trainable head and what it reads and returns: its config, decoder and readout, its inputs, clips made
ready to score, the result, checkpoints and tensor files.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.head.checkpoint import CONFIG_FILE, load_weights, read_checkpoint, read_checkpoint_config, save_checkpoint
from merclip.head.config import ModelConfig
from merclip.head.inputs import ClipFeatures, ModalityInput, batch_of
from merclip.head.network import ADAPTED_TEMPERATURE, MerClipHead
from merclip.head.prepared import PreparedClips
from merclip.head.result import Prediction, StageAttention
from merclip.head.tensor_files import read_tensor_file, write_tensor_file

__all__ = ["ADAPTED_TEMPERATURE", "CONFIG_FILE", "ClipFeatures", "MerClipHead", "ModalityInput", "ModelConfig",
           "Prediction", "PreparedClips", "StageAttention", "batch_of", "load_weights", "read_checkpoint",
           "read_checkpoint_config", "read_tensor_file", "save_checkpoint", "write_tensor_file"]
