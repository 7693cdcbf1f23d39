"""The page's model store keeps at most `max_models` analyzers, and what it drops is freed."""

import gc
import weakref

from demo.clip_tab import OUTPUT_NAMES, AnalysisService
from demo.model_store import ModelChoice, ModelStore
from merclip import load_model
from tests.conftest import TINY


def test_a_model_the_store_drops_is_garbage_collected_with_its_analyzer_and_kept_clips(tmp_path, astronaut):
    load_model(TINY, device="cpu").save(tmp_path / "ck")
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none"), device="cpu", checkpoints={"ck": str(tmp_path / "ck")},
                       max_models=1)
    service = AnalysisService(store, tmp_path / "served")
    service.on_api_predict(str(tmp_path / "face.png"), "happy, sad")  # the page's path: the clip is kept for re-scoring
    dropped = store.reader(ModelChoice(TINY, "none"))
    assert dropped.kept_clips() == 1
    analyzer, model, reader = weakref.ref(dropped.analyzer), weakref.ref(dropped.analyzer.model), weakref.ref(dropped)
    del dropped
    # another model: the first is dropped
    service.on_api_predict(str(tmp_path / "face.png"), "happy, sad", checkpoint="ck")
    gc.collect()
    assert reader() is None and analyzer() is None and model() is None, "the dropped model is still in memory"
    again = service.on_api_predict(str(tmp_path / "face.png"), "calm", checkpoint="ck")
    assert store.find(again[OUTPUT_NAMES.index("clip_id")]) is not None, "the kept model still re-scores"
