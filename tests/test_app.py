"""The app's API, driven by gradio_client against a launched `python app.py` (tiny model, bundled Whisper)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from gradio_client import Client, handle_file

from demo.clip_tab import OUTPUT_NAMES
from merclip.media.sample_media import speech_clip

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("app") / "face and speech.mp4", seconds=6)


def outputs(values) -> dict:
    return dict(zip(OUTPUT_NAMES, values))


def test_predict_returns_labels_stages_crops_and_transcript(tiny_app, clip_path):
    out = outputs(Client(tiny_app.url, verbose=False).predict(handle_file(str(clip_path)), "happy, sad, calm",
                                                         api_name="/predict"))
    result = out["result"]
    assert result["labels"] == ["happy", "sad", "calm"]
    assert sum(result["probs"]) == pytest.approx(1, abs=1e-4)
    assert [s["modality"] for s in result["stages"]] == ["text", "audio", "vision"]
    for stage in result["stages"]:
        assert np.array(stage["attention"]).shape == (3, len(stage["elements"]))
    assert "dagger" in result["transcript"]["text"]
    assert len(out["gallery"]) == 8 and all(item["caption"].endswith(" s") for item in out["gallery"])
    assert [t["token"].strip() for t in out["transcript"]] == [w["word"] for w in result["transcript"]["words"]]
    assert all(stage["visible"] and stage["value"]["type"] == "matplotlib" for stage in (out["stage_1"], out["stage_2"]))
    assert not out["stage_3"]["visible"] and "Voice stage" in out["untrained"], "the untrained audio stage: a line"
    assert out["stage_1"]["value"]["chart"].startswith("Words stage attention"), "alt text for screen readers"
    assert out["bars"]["plot"].startswith("data:image/")
    assert len(result["faces"]) == 8 and all(face["box"] and face["score"] >= 0.9 for face in result["faces"])
    assert len(result["segments"]) >= 2 and out["segments"]["visible"] and "dagger" in " ".join(
        s["text"] for s in result["segments"])
    assert [c[0] for c in out["segment_choice"]["choices"]][0] == "Whole clip"
    with open(out["segments_csv"], encoding="utf-8") as handle:
        assert handle.readline().startswith("file,start,end,text,top_label")
    assert out["clip_id"] == result["clip_id"]
    with open(out["download"], encoding="utf-8") as handle:
        assert '"top_label"' in handle.read()


def test_rescore_gives_new_labels_without_running_encoders(tiny_app, clip_path):
    client = Client(tiny_app.url, verbose=False)
    first = outputs(client.predict(handle_file(str(clip_path)), "happy, sad", api_name="/predict"))
    again = outputs(client.predict(first["clip_id"], "proud, bored|tired, sarcastic", api_name="/rescore"))
    assert again["result"]["labels"] == ["proud", "bored", "sarcastic"]
    assert set(again["result"]["timings_ms"]) == {"cache_lookup", "label_encoding", "decoder"}, "no encoder may run again"
    assert again["result"]["transcript"] == first["result"]["transcript"]


def test_bad_file_gets_a_message_and_the_next_request_succeeds(tiny_app, clip_path, tmp_path):
    client = Client(tiny_app.url, verbose=False)
    (tmp_path / "notes.mp4").write_text("this is not a video")
    with pytest.raises(Exception, match="not a video, audio or image file"):
        client.predict(handle_file(str(tmp_path / "notes.mp4")), "happy, sad", api_name="/predict")
    with pytest.raises(Exception, match="no analysed clip to re-score"):
        client.predict("", "happy", api_name="/rescore")
    out = outputs(client.predict(handle_file(str(clip_path)), "happy, sad", api_name="/predict"))
    assert out["result"]["labels"] == ["happy", "sad"]


def test_four_concurrent_requests_each_get_their_own_answer(tiny_app, clip_path, tmp_path):
    other = speech_clip(tmp_path / "other.mp4", seconds=3)
    jobs = [(clip_path, "happy, sad"), (other, "calm, tense, bored"), (clip_path, "joy, anger, fear, awe"), (other, "yes")]

    def run(job):
        media, labels = job
        return outputs(Client(tiny_app.url, verbose=False).predict(handle_file(str(media)), labels, api_name="/predict"))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(run, jobs))
    durations = {str(clip_path): 6, str(other): 3}
    for (media, labels), answer in zip(jobs, answers):
        assert answer["result"]["labels"] == [label.strip() for label in labels.split(",")]
        last_frame = answer["result"]["frame_similarity"]["times"][-1]
        assert durations[str(media)] - 1 < last_frame < durations[str(media)], "each answer is for its own clip"


def test_every_output_of_the_api_has_a_name(tiny_app):
    """A script reads the API page (or `view_api`) to know what each output is: no `value_11`."""
    endpoints = Client(tiny_app.url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/predict", "/rescore"):
        labels = [output["label"] for output in endpoints[name]["returns"]]
        assert len(labels) == len(OUTPUT_NAMES) and not [label for label in labels if label.startswith("value_")], labels
        assert len(set(labels)) == len(labels), f"{name}: two outputs share a name: {labels}"
