"""What changes on a GPU, checked on the CPU: half-precision numbers, Whisper's device, CUDA failures."""

import ctypes
from pathlib import Path

import numpy as np
import torch

from merclip.api import MerClip, build_head
from merclip.clip.loader import load_clip
from merclip.head.config import ModelConfig
from merclip.head.inputs import ModalityInput
from merclip.host.zero_gpu import zero_gpu_mode
from merclip.labels.parsing import parse_labels
from merclip.labels.templates import resolve_templates
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.speech import transcribe

TINY = "merclip-tiny:random"
LABELS = "happy, sad, angry, calm, surprised, bored, proud"
PROB_TOLERANCE = 2e-3  # half precision keeps ~3 significant digits


def model_in(precision: str) -> MerClip:
    bundle = load_clip(TINY, "cpu", precision=precision)
    return MerClip(bundle, build_head(ModelConfig(clip=bundle.spec.text, embed_dim=bundle.embed_dim)))


def test_half_precision_analysis_agrees_with_float32(tmp_path):
    clip = speech_clip(tmp_path / "clip.mp4", seconds=3)
    options = AnalysisOptions(transcript="I sleep with a dagger, you understand?")
    results = {p: Analyzer(model_in(p), whisper="none").score(clip, LABELS, options=options) for p in ("fp32", "fp16")}
    assert model_in("fp16").clip.model.visual.conv1.weight.dtype == torch.float16, "the CLIP towers really ran in fp16"
    full, half = (np.array(results[p].probs) for p in ("fp32", "fp16"))
    assert np.isfinite(half).all() and results["fp16"].modalities == ["text", "audio", "vision"]
    assert np.abs(full - half).max() < PROB_TOLERANCE, (full, half)
    assert results["fp16"].top_label == results["fp32"].top_label


def test_a_sample_missing_text_and_vision_scores_under_fp16_autocast(tiny_model, random_audio_features):
    """Sample 1 has audio only: its prior weights are 0 / (sum of nothing), which must not be NaN."""
    labels = parse_labels(LABELS)
    embeddings, _ = tiny_model.label_embeddings(labels, resolve_templates(None))
    d = tiny_model.config.embed_dim
    audio = torch.from_numpy(random_audio_features)[None].repeat(2, 1, 1)
    present = torch.tensor([[True] * 4, [False] * 4])
    batch = {
        "text": ModalityInput(torch.randn(2, 4, d), present, torch.randn(2, d)),
        "audio": ModalityInput(audio, torch.ones(audio.shape[:2], dtype=torch.bool)),
        "vision": ModalityInput(torch.randn(2, 4, d), present),
    }
    head = build_head(tiny_model.config)
    head.readout.weight.data.normal_(0, 0.1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        out = head(batch, embeddings, tiny_model.clip.logit_scale)
    assert torch.isfinite(out.logits).all(), out.logits
    assert torch.all(out.prior_weights["vision"][1] == 0) and torch.all(out.prior_weights["text"][1] == 0)


def test_cuda_12_cublas_really_loads_in_this_environment():
    """torch's CUDA 12 build depends on nvidia-cublas-cu12: what CTranslate2 needs on a GPU is there."""
    path = transcribe.cublas12_loads()
    assert path is not None and Path(path).is_file(), path
    assert Path(path).name == "libcublas.so.12" and Path(path).parent.match("nvidia/cublas/lib"), path
    assert path in Path("/proc/self/maps").read_text(), "loaded into this process"


def test_cuda_12_cublas_is_taken_from_the_pip_package_when_its_soname_does_not_resolve(monkeypatch):
    """As with a CPU or CUDA 13 build of torch, which loads no cuBLAS 12 itself."""
    real_cdll = ctypes.CDLL

    def by_full_path_only(name, mode=0):
        if "/" not in name:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return real_cdll(name, mode=mode)

    monkeypatch.setattr(ctypes, "CDLL", by_full_path_only)
    path = transcribe.cublas12_loads()
    assert path is not None and Path(path).parent.match("nvidia/cublas/lib"), path


def test_whisper_runs_on_the_gpu_ctranslate2_sees_when_cuda_12_cublas_loads(monkeypatch):
    import ctranslate2

    assert transcribe.engine_placement("cpu") == ("cpu", 0, "int8")
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    assert transcribe.engine_placement("cuda:1") == ("cuda", 1, "auto"), "the device index is kept"
    assert transcribe.engine_placement("cuda") == ("cuda", 0, "auto")
    assert transcribe.engine_placement("cuda:2") == ("cpu", 0, "int8"), "a GPU CTranslate2 cannot see"


def test_whisper_stays_on_the_cpu_without_cuda_12_cublas(monkeypatch):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    monkeypatch.setattr(transcribe, "CUBLAS", "libcublas-not-installed.so.12")
    monkeypatch.setattr(transcribe, "CUBLAS_PACKAGE", "nvidia-cublas-not-installed")
    assert transcribe.cublas12_loads() is None
    assert transcribe.engine_placement("cuda:1") == ("cpu", 0, "int8")


def test_whisper_failing_on_the_gpu_mid_transcription_is_a_warning(tiny_model, tmp_path):
    clip = speech_clip(tmp_path / "clip.mp4", seconds=3)
    analyzer = Analyzer(tiny_model)

    class FailingOnCuda:
        def transcribe(self, waveform, check):
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    analyzer._recognizer = FailingOnCuda()
    result = analyzer.score(clip, "happy, sad")
    assert result.modalities == ["audio", "vision"]
    assert any("speech recognition failed (Library libcublas.so.12" in w and "text stage is skipped" in w
               for w in result.warnings), result.warnings


def test_whisper_is_placed_on_the_cpu_on_zero_gpu_without_asking_ctranslate2(monkeypatch):
    """On a ZeroGPU Space the models sit on "cuda" but Whisper runs in the main process, which
    holds no GPU: CTranslate2 is not even asked (that would touch CUDA there)."""
    import ctranslate2

    def touches_cuda():
        raise AssertionError("CTranslate2 was asked for CUDA devices in ZeroGPU's main process")

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", touches_cuda)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert transcribe.engine_placement("cuda") == ("cpu", 0, "int8")


def test_zero_gpu_mode_is_read_as_the_spaces_package_reads_it(monkeypatch):
    from spaces.config import boolean

    for value in ("true", "True", "1", "t", "false", "0", "", "yes"):
        monkeypatch.setenv("SPACES_ZERO_GPU", value)
        assert zero_gpu_mode() is boolean(value), value
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert zero_gpu_mode() is False
