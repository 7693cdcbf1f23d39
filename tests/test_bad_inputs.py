"""The bad-input corpus (tests/bad_inputs.py) through the CLI and through a launched app.

Every case ends in one readable line (CLI exit status 2, a message in the app) or in a
result that says what was wrong; after each, a normal request still succeeds.
"""

import json
import threading

import pytest
from gradio_client import Client, handle_file

from demo.clip_tab import OUTPUT_NAMES
from merclip.commands.cli import main
from merclip.media.sample_media import speech_clip
from tests import bad_inputs

TINY = ["--clip", "merclip-tiny:random", "--device", "cpu"]
GOOD_LABELS = "happy, sad"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return {case: build(folder / name) for case, (name, build, _, _) in bad_inputs.MEDIA.items()}


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("good") / "good.mp4", seconds=3)


def run_cli(capsys, media, *extra, labels=GOOD_LABELS):
    status = main(["predict", str(media), "--labels", labels, "--json", *TINY, *extra])
    out, err = capsys.readouterr()
    return status, out, err


def check_cli(status, out, err, expect, fragment):
    if expect == "error":
        assert status == 2 and out == "", out
        assert err.count("\n") == 1 and err.startswith("merclip: error: ") and fragment in err, err
        return None
    assert status == 0, err
    result = json.loads(out)
    if expect == "warning":
        assert any(fragment in w for w in result["warnings"]), result["warnings"]
    return result


@pytest.mark.parametrize("case", list(bad_inputs.MEDIA))
def test_cli_media_corpus(capsys, corpus, case):
    _, _, expect, fragment = bad_inputs.MEDIA[case]
    result = check_cli(*run_cli(capsys, corpus[case]), expect, fragment)
    if result is not None:
        assert result["labels"] == ["happy", "sad"] and result["modalities"]["used"]


def test_cli_hostile_name_reaches_no_shell_and_errors_stay_one_line(capsys, corpus, tmp_path):
    path = corpus["hostile file name"]
    assert path.name == bad_inputs.HOSTILE_NAME and path.is_file()
    status, out, _ = run_cli(capsys, path.parent / ".." / path.parent.name / path.name, "--whisper", "none")
    assert status == 0 and json.loads(out)["modalities"]["used"] == ["audio", "vision"]
    broken = tmp_path / bad_inputs.HOSTILE_NAME
    broken.write_bytes(b"\x00\x01 not media" * 50)
    status, out, err = run_cli(capsys, broken)
    assert status == 2 and err.count("\n") == 1, err  # the newline of the name is shown escaped
    assert "\\n..mp4" in err


@pytest.mark.parametrize("case", list(bad_inputs.LABELS))
def test_cli_label_corpus(capsys, good_clip, case):
    labels, expect, fragment = bad_inputs.LABELS[case]
    result = check_cli(*run_cli(capsys, good_clip, "--whisper", "none", labels=labels), expect, fragment)
    assert all(ch.isprintable() for label in result["labels"] for ch in label), result["labels"]


@pytest.mark.parametrize("case", list(bad_inputs.TEMPLATES))
def test_cli_template_corpus(capsys, good_clip, case):
    template, expect, fragment = bad_inputs.TEMPLATES[case]
    check_cli(*run_cli(capsys, good_clip, "--whisper", "none", "--templates", template), expect, fragment)


def test_cli_100k_transcript_is_cut_with_a_warning(capsys, good_clip):
    result = check_cli(*run_cli(capsys, good_clip, "--transcript", bad_inputs.LONG_TRANSCRIPT), "warning",
                       "transcript was cut")
    assert result["modalities"]["used"][0] == "text"


# ---- the same corpus against a launched app -------------------------------------------------------

RESULT = OUTPUT_NAMES.index("result")


def app_predict(client, media, labels=GOOD_LABELS, **advanced):
    return client.predict(handle_file(str(media)), labels, api_name="/predict", **advanced)[RESULT]


def assert_next_request_succeeds(client, good_clip):
    assert app_predict(client, good_clip)["labels"] == ["happy", "sad"]


def check_app_case(client, media, expect, fragment, case):
    if expect == "error":
        with pytest.raises(Exception, match=fragment.replace(".", r"\.")) as raised:
            app_predict(client, media)
        assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value).strip(), case
    else:
        result = app_predict(client, media)
        assert result["labels"] == ["happy", "sad"], case
        if expect == "warning":
            assert any(fragment in w for w in result["warnings"]), (case, result["warnings"])


# What one hostile request may cost the server (issue 34): its peak resident memory above what it
# held before the request, and what it still holds once answered. The latter is taken over the whole
# corpus, per request: one request's own RSS change moves by +-25 MB with when the allocator hands
# memory back (measured: -26.6 to +22.8 MB in one run, summing to about 0), which says nothing of a leak.
HOSTILE_PEAK_MB = 200
HOSTILE_RETAINED_MB = 20


@pytest.mark.slow
def test_app_media_corpus(tiny_app, corpus, good_clip):
    client = Client(tiny_app.url, verbose=False)
    assert_next_request_succeeds(client, good_clip)  # models loaded and code paths warm before measuring
    costs = {}
    start, _ = tiny_app.memory_mb()
    for case, (_, _, expect, fragment) in bad_inputs.MEDIA.items():
        before, _ = tiny_app.memory_mb()
        tiny_app.reset_peak()
        check_app_case(client, corpus[case], expect, fragment, case)
        after, peak = tiny_app.memory_mb()
        costs[case] = (peak - before, after - before)
        assert_next_request_succeeds(client, good_clip)
    retained = (tiny_app.memory_mb()[0] - start) / len(costs)
    table = "\n".join(f"{case:24} peak +{peak:6.1f} MB, RSS change {kept:+6.1f} MB" for case, (peak, kept) in costs.items())
    print(f"{table}\nretained per request over the corpus: {retained:+.1f} MB")
    assert all(peak <= HOSTILE_PEAK_MB for peak, _ in costs.values()), table
    assert retained <= HOSTILE_RETAINED_MB, f"{retained:.1f} MB retained per request\n{table}"
    assert "Traceback" not in tiny_app.output()


@pytest.mark.slow
def test_app_serves_another_visitor_while_the_corpus_runs(tiny_app, corpus, good_clip):
    """A hostile client sending the whole corpus does not stop a second visitor's analyses."""
    hostile = Client(tiny_app.url, verbose=False)
    visitor = Client(tiny_app.url, verbose=False)
    failures = []

    def send_corpus():
        for case, (_, _, expect, fragment) in bad_inputs.MEDIA.items():
            try:
                check_app_case(hostile, corpus[case], expect, fragment, case)
            except AssertionError as exc:
                failures.append(f"{case}: {exc}")

    sender = threading.Thread(target=send_corpus)
    sender.start()
    served = 0
    while sender.is_alive() or served == 0:
        assert_next_request_succeeds(visitor, good_clip)
        served += 1
    sender.join()
    assert not failures, failures
    assert served >= 2, "the visitor's analyses waited for the whole corpus"
    assert "Traceback" not in tiny_app.output()


@pytest.mark.slow
def test_app_label_template_and_transcript_corpus(tiny_app, good_clip):
    client = Client(tiny_app.url, verbose=False)
    for case, (labels, expect, fragment) in bad_inputs.LABELS.items():
        outputs = dict(zip(OUTPUT_NAMES, client.predict(handle_file(str(good_clip)), labels, api_name="/predict")))
        assert len(outputs["result"]["labels"]) >= 2, case
        assert "<script>" not in outputs["summary"] and "<b>" not in outputs["summary"], case
        if expect == "warning":
            assert fragment in outputs["warnings"], case
    for case, (template, expect, fragment) in bad_inputs.TEMPLATES.items():
        if expect == "error":
            with pytest.raises(Exception, match=fragment):
                app_predict(client, good_clip, vision_templates=template)
        else:
            assert app_predict(client, good_clip, vision_templates=template)["labels"] == ["happy", "sad"], case
        assert_next_request_succeeds(client, good_clip)
    result = app_predict(client, good_clip, transcript=bad_inputs.LONG_TRANSCRIPT)
    assert any("transcript was cut" in w for w in result["warnings"])
    assert_next_request_succeeds(client, good_clip)
