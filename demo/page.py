"""The page: a video in, typed labels, and every figure of one analysis out.

UI only: what happens on each event lives in `demo.clip_tab`, the figures in
`demo.figures`, the models in `demo.model_store`, colours in `demo.style`.

Layout for a first visit: the examples sit under the video input and run on a click; the
labels box re-scores on Enter; results start beside the input. Page events are private;
the API (`/predict`, `/rescore`) is served by the same functions with plain errors.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from demo.clip_tab import OUTPUT_NAMES, PAGE_OUTPUT_NAMES, STALE_NOTE, AnalysisService
from demo.described_plot import DescribedPlot
from demo.first_screen import FirstScreen
from demo.live_tab import HISTORY_EMPTY, LISTENING, LiveService
from demo.model_store import NO_CHECKPOINT, ModelStore
from demo.palette import LabelColours
from demo.presets import CUSTOM, DEFAULT_PRESET, PRESETS
from demo.views import STAGE_SLOTS, WHOLE_CLIP
from merclip.labels import DEFAULT_TEMPLATES
from merclip.limits import Limits
from merclip.reading import HEARING_WINDOW_SECONDS, KEPT_SECONDS

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLES = (  # clip, label set, the name shown on the example's button
    ("examples/great_news.mp4", "Ekman's seven emotions", "Great news! (emotions)"),
    ("examples/rough_day.mp4", "Sentiment (3 classes)", "A rough day (sentiment)"),
)
INTRO = """# MER-CLIP: how does CLIP read emotion from a face, a voice and words?
Record or upload a short video and press **Analyse**, or click an example. Type your own labels (`happy|joyful`: synonyms
of one label; `positive=1`: a numeric anchor) and press Enter to re-score the same clip in a fraction of a second."""

LIVE_INTRO = f"""**1.** Click *Click to Access Webcam* and allow the camera (and the microphone, while *Listen too* is
ticked). **2.** Press *Record* under the picture: the bars follow the face in it, frame by frame (the Face stage of the
same model), and the words and voice of each sentence join in at its pause (or every {HEARING_WINDOW_SECONDS:.0f} s of
speech). Press it again to stop. **3.** *Analyse the last seconds* runs the full analysis on what the camera and
microphone just captured. Frames are scored on {{where}}; a stream stops after {{limit}} s (press *Record* again to go
on)."""
LIVE_FRAME_SECONDS = 0.1  # the camera sends a frame this often; the ones that arrive while one is scored are skipped
LIVE_TIME_LIMIT = 120  # seconds a visitor's stream may hold one of the live slots
LIVE_VISITORS = 4  # streams scored at once
# Each kind of analysis waits in a queue of its own (the page shows a visitor's place in it), so one
# waiting for a GPU slot or a long clip holds up no other kind. Two at a time per kind of the page's
# analyses: one visitor waiting does not stall the next, and a CPU host (each analysis uses every
# core) is not overrun; the API, which a script can fill, has a lane of its own for each verb.
QUEUES = {kind: dict(concurrency_limit=limit, concurrency_id=kind) for kind, limit in (
    ("analyse", 2), ("example", 2), ("live-clip", 2), ("predict", 1), ("rescore", 4), ("rescore-api", 2))}

# A file the browser cannot play ("holiday.mp4" that is text) is reported once, beside the inputs, by the
# server's check of every upload (`AnalysisService.on_new_media`); the video player's own "Video not playable"
# toast would say it a second time, in another place. Its error events are stopped before they reach it.
# A file over the upload limit is stopped before Gradio refuses it with a toast (and leaves the note of the
# file before): its name and size go to the hidden `#media-refused` box, and the server words the note.
PAGE_HEAD = """<script>
document.addEventListener('error', (event) => {
  if (event.target instanceof HTMLVideoElement && event.target.closest('#video')) event.stopPropagation();
}, true);
const merclipRefuse = (event, files) => {
  const big = [...(files || [])].find((file) => file.size > MERCLIP_MAX_BYTES);
  if (!big) return;
  event.stopImmediatePropagation();
  event.preventDefault();
  if (event.type === 'change') event.target.value = '';
  const box = document.querySelector('#media-refused textarea');
  box.value = JSON.stringify({name: big.name, bytes: big.size, at: Date.now()});
  box.dispatchEvent(new Event('input', {bubbles: true}));
};
document.addEventListener('change', (event) => {
  if (event.target.matches?.('#video input[type=file], #other-media input[type=file]')) merclipRefuse(event, event.target.files);
}, true);
document.addEventListener('drop', (event) => {
  if (event.target.closest?.('#video, #other-media')) merclipRefuse(event, event.dataTransfer?.files);
}, true);
</script>"""


def page_head(max_file_mb: float) -> str:
    """The page's script, refusing files over the server's upload limit (Gradio's `max_file_size`)."""
    return PAGE_HEAD.replace("MERCLIP_MAX_BYTES", str(int(max_file_mb) * 2**20))


# A result the visitor asked for, off-screen (below: on a phone the input column comes first; above: the
# visitor scrolled down to an example), is scrolled into view. The first screen's example is not asked for:
# a phone visitor first meets the title and the inputs (the flag is set by `ASKED`, on the visitor's actions).
SHOW_RESULT = """(figure) => { const bars = document.querySelector('#bars');
  const top = bars ? bars.getBoundingClientRect().top : 0;
  if (window.merclipAsked && figure && bars && (top > window.innerHeight * 0.6 || top < 0)) window.scrollBy(0, top - 8);
  return figure; }"""
ASKED = "() => { window.merclipAsked = true; }"


def build_page(store: ModelStore, service: AnalysisService, live: LiveService,
               first_screen: FirstScreen | None = None) -> gr.Blocks:
    """The page; `first_screen`: the example's finished analysis that a new page opens with."""
    with gr.Blocks(title="MER-CLIP", delete_cache=(600, 3600)) as page:  # every 10 min, files over an hour old
        gr.Markdown(INTRO)
        status = gr.Markdown(store.status_markdown, label="Model status", elem_id="model-status")
        outputs = _outputs()
        colours = gr.State(LabelColours())  # a label keeps its colour in every figure for the whole visit
        # side by side on a laptop; on a phone (a column under 2 x 200 px) one under the other, so the set's
        # name and its menu are shown whole
        preset = gr.Dropdown([*PRESETS, CUSTOM], value=DEFAULT_PRESET, label="Label set", render=False,
                             min_width=200)
        labels = gr.Textbox(PRESETS[DEFAULT_PRESET], label="Labels (Enter re-scores)", lines=1, max_lines=4,
                            info="comma-separated; synonyms with |; numeric anchors with =", elem_id="labels",
                            render=False, min_width=200)
        with gr.Tabs(elem_id="modes") as tabs:
            with gr.Tab("Analyse a clip", id="clip"):
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        video = gr.Video(label="Video (upload, or record with sound)", sources=["upload", "webcam"],
                                         include_audio=True, elem_id="video")
                        other_media = gr.File(label="…or a photo or a sound file", file_types=["image", "audio"],
                                              elem_id="other-media")
                        outputs["media_note"].render()
                        refused = gr.Textbox(visible="hidden", elem_id="media-refused")  # filled by `PAGE_HEAD`
                        with gr.Row(equal_height=True):
                            preset.render()
                            labels.render()
                        outputs["label_note"].render()
                        with gr.Row():
                            analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                            rescore = gr.Button("Re-score labels", elem_id="rescore")
                        examples = gr.Examples(
                            [[str(ASSETS / path), name, PRESETS[name]] for path, name, _ in EXAMPLES if (ASSETS / path).is_file()],
                            [video, preset, labels], label="Examples: click one to analyse it", api_visibility="private",
                            example_labels=[title for path, _, title in EXAMPLES if (ASSETS / path).is_file()])
                        with gr.Accordion("Advanced", open=False):
                            vision_templates, text_templates, audio_templates = (
                                gr.Textbox("", label=f"{m.capitalize()} templates", placeholder="; ".join(DEFAULT_TEMPLATES[m]),
                                           info="separated by ;, each with {} for the label; empty = the model's own")
                                for m in ("vision", "text", "audio")
                            )
                            frames = gr.Slider(1, Limits.max_frames, value=Limits.frames, step=1, label="Video frames to sample")
                            detect_faces = gr.Checkbox(True, label="Detect faces (otherwise whole frames)")
                            transcript = gr.Textbox("", label="Transcript override", lines=2,
                                                    placeholder="type what is said to skip speech recognition")
                            clip = gr.Dropdown(store.clip_choices, value=store.default.clip, label="CLIP model")
                            whisper = gr.Dropdown(store.whisper_choices, value=store.default.whisper, label="Whisper model")
                            checkpoint = gr.Dropdown(store.checkpoint_choices, value=store.default.checkpoint or NO_CHECKPOINT,
                                                     label="Trained checkpoint", visible=len(store.checkpoint_choices) > 1)
                    with gr.Column(scale=3, min_width=320):
                        outputs["heading"].render()
                        outputs["stale"].render()
                        outputs["bars"].render()
                        outputs["segments"].render()
                        outputs["segment_choice"].render()
                        outputs["warnings"].render()
                        outputs["summary"].render()
                gr.Markdown("### What each decoder stage looked at", elem_id="stages-heading")
                outputs["untrained"].render()
                with gr.Row():
                    for i in range(STAGE_SLOTS):
                        with gr.Column(min_width=360):
                            outputs[f"stage_{i + 1}"].render()
                with gr.Row():
                    outputs["gallery"].render()
                    outputs["transcript"].render()
                outputs["timeline"].render()
                outputs["figures_image"].render()
                with gr.Accordion("Full result (JSON)", open=False):
                    outputs["result"].render()
                    outputs["download"].render()
                    outputs["clip_id"].render()
                    outputs["segments_csv"].render()

            with gr.Tab("Live webcam", id="live", elem_id="live-tab"):
                live_parts = _live_tab(live)
        page.unload(live.on_unload)
        if first_screen is not None:
            # Waits for the example's analysis (only right after a server starts), then reads what the visitor has
            # set meanwhile: the second step's inputs are taken when it starts, so the visitor's own input wins.
            page.load(first_screen.on_load_wait_for_example, None, None, api_visibility="private",
                      concurrency_limit=None, show_progress="hidden").then(
                first_screen.on_load, [colours, video, other_media, preset, labels],
                [video, preset, labels, *(outputs[n] for n in OUTPUT_NAMES), outputs["stale"], colours],
                api_visibility="private", concurrency_limit=None, show_progress="minimal")

        page_outputs = [*outputs.values(), colours]
        api_outputs = [outputs[name] for name in OUTPUT_NAMES]  # without the notes beside the inputs
        templates = [vision_templates, text_templates, audio_templates]
        options = [frames, detect_faces, transcript, clip, whisper, checkpoint]
        rescoring_queue = QUEUES["rescore"]
        for start, queue in ((analyse.click, QUEUES["analyse"]),  # an example: its clip, labels, label set
                             (examples.load_input_event.then, QUEUES["example"])):
            start(service.on_analyse, [video, other_media, labels, *templates, *options, colours], page_outputs,
                  api_visibility="private", **queue)
        rescoring = [outputs["clip_id"], labels, *templates, outputs["segment_choice"], colours]
        for trigger in (rescore.click, labels.submit, *(t.submit for t in templates)):
            trigger(service.on_rescore, rescoring, page_outputs, api_visibility="private", **rescoring_queue)
        # choosing an utterance redraws every panel for it, with the labels in the box
        outputs["segment_choice"].input(service.on_menu_choice, rescoring, page_outputs, api_visibility="private",
                                        **rescoring_queue)
        camera, microphone, live_labels = live_parts["camera"], live_parts["microphone"], live_parts["labels"]
        camera.stream(live.on_frame, [camera, live_labels, colours],
                      [live_parts[name] for name in ("bars", "history", "status", "label_note")],
                      stream_every=LIVE_FRAME_SECONDS, time_limit=LIVE_TIME_LIMIT, api_visibility="private",
                      concurrency_limit=LIVE_VISITORS, concurrency_id="live", show_progress="hidden")
        microphone.start_recording(lambda: LISTENING, None, live_parts["transcript"], api_visibility="private",
                                   queue=False)  # said from Record until the first words
        microphone.stream(live.on_sound, microphone, live_parts["transcript"], stream_every=0.5,
                          time_limit=LIVE_TIME_LIMIT, api_visibility="private", concurrency_limit=LIVE_VISITORS,
                          concurrency_id="live-sound", show_progress="hidden")
        recorded = live_parts["analyse"].click(  # a mistake is said beside the button; nothing recorded stops here
            live.on_analyse_last_note, None, live_parts["analyse_note"], api_visibility="private", queue=False).then(
            live.on_analyse_last_clip, live_parts["seconds"], [video, tabs], api_visibility="private",
            show_progress="hidden")
        recorded.success(  # the clip tab takes the live labels, and their label set's name if they are one
            lambda typed: (typed, next((name for name, text in PRESETS.items() if text == typed), CUSTOM)),
            live_labels, [labels, preset], api_visibility="private", queue=False).then(
            service.on_analyse, [video, other_media, labels, *templates, *options, colours], page_outputs,
            api_visibility="private", **QUEUES["live-clip"])
        preset.input(lambda name: gr.skip() if name == CUSTOM else PRESETS[name], preset, labels,
                     api_visibility="private").then(
            service.on_menu_choice, rescoring, page_outputs, api_visibility="private", **rescoring_queue)
        labels.input(lambda clip_id: (CUSTOM, STALE_NOTE if clip_id else ""), outputs["clip_id"], [preset, outputs["stale"]],
                     api_visibility="private", queue=False)
        outputs["bars"].change(None, outputs["bars"], js=SHOW_RESULT, api_visibility="private", queue=False)
        gr.on([analyse.click, examples.dataset.click, rescore.click, labels.submit, preset.input,
               outputs["segment_choice"].input, live_parts["analyse"].click], None, js=ASKED, api_visibility="private",
              queue=False)
        # new media forgets the analysed clip and empties the other input (an example sets its own clip_id)
        for given, new_media, other in ((video, video.upload, other_media), (video, video.stop_recording, other_media),
                                        (other_media, other_media.upload, video)):
            new_media(service.on_new_media, given, [outputs["clip_id"], other, given, outputs["media_note"]],
                      api_visibility="private")
        refused.change(service.on_refused_upload, refused, outputs["media_note"], api_visibility="private", queue=False)
        video.clear(service.on_clear, None, [outputs[name] for name in PAGE_OUTPUT_NAMES], api_visibility="private",
                    queue=False)

        # The API: the same analyses, with a plain error for bad labels (no page to show a note on)
        api = gr.Button(visible=False)
        api.click(service.on_api_predict, [video, labels, *templates, *options], api_outputs, api_name="predict",
                  **QUEUES["predict"])
        api.click(service.on_api_rescore, [outputs["clip_id"], labels, *templates], api_outputs, api_name="rescore",
                  **QUEUES["rescore-api"])

        timer = gr.Timer(1.5, active=store.loading)
        timer.tick(lambda: (store.status_markdown(), gr.Timer(active=store.loading)), None, [status, timer],
                   api_visibility="private", queue=False)
    return page


def _live_tab(live: LiveService) -> dict[str, gr.components.Component]:
    """The Live tab's layout; its events are wired in `build_page`."""
    gr.Markdown(LIVE_INTRO.format(where=live.where, limit=LIVE_TIME_LIMIT), elem_id="live-intro")
    parts: dict[str, gr.components.Component] = {}
    with gr.Row():  # the camera and the bars side by side, or (on a phone) one under the other
        with gr.Column(scale=2, min_width=320):
            gr.HTML('<p id="live-device-note" role="alert" hidden></p>')
            parts["camera"] = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy", height=300,
                                       elem_id="live-camera")
            parts["listen"] = gr.Checkbox(True, label="Listen too: the microphone records with the camera",
                                          interactive=True, elem_id="live-listen")
        with gr.Column(scale=3, min_width=320):
            parts["status"] = gr.Markdown("Press Record under the picture: the bars follow the face in it.",
                                          elem_id="live-status")
            parts["bars"] = gr.BarPlot(x="bar", y="probability", color="label", y_lim=[0, 1], height=260,
                                       label="Labels now (smoothed)", show_label=False, elem_id="live-bars")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            parts["microphone"] = gr.Audio(label="Microphone (starts and stops with Record)", sources=["microphone"],
                                           streaming=True, type="filepath", elem_id="live-microphone")
            parts["labels"] = gr.Textbox(PRESETS[DEFAULT_PRESET], label="Labels (take effect on the next frame)",
                                         lines=1, max_lines=4, elem_id="live-labels",
                                         info="comma-separated; synonyms with |; numeric anchors with =")
            parts["label_note"] = gr.Markdown(elem_id="live-label-note")
            parts["seconds"] = gr.Slider(2, KEPT_SECONDS, value=KEPT_SECONDS, step=1, label="Seconds to analyse")
            parts["analyse"] = gr.Button("Analyse the last seconds", variant="primary", elem_id="analyse-last")
            parts["analyse_note"] = gr.Markdown(elem_id="live-analyse-note")
        with gr.Column(scale=3, min_width=320):
            parts["history"] = gr.HTML(HISTORY_EMPTY, elem_id="live-history")  # see history_frame
            parts["transcript"] = gr.Textbox(label="Heard (with the microphone on)", lines=3, max_lines=6,
                                             interactive=False, autoscroll=True, elem_id="live-transcript")
    return parts


def _outputs() -> dict[str, gr.components.Component]:
    """The result components in `PAGE_OUTPUT_NAMES` order, made before the layout places them."""
    figure = dict(show_label=False, render=False, elem_classes=["figure"])
    components = {
        "bars": DescribedPlot(label="Label similarity", elem_id="bars", **figure),
        **{f"stage_{i + 1}": DescribedPlot(label=f"Decoder stage {i + 1}", elem_id=f"stage-{i + 1}", **figure)
           for i in range(STAGE_SLOTS)},
        "untrained": gr.Markdown(label="Stages not drawn (untrained)", elem_id="untrained", render=False),
        "timeline": DescribedPlot(label="Face similarity over the clip", elem_id="timeline", **figure),
        "gallery": gr.Gallery(label="Sampled face crops", columns=4, elem_id="crops", render=False),
        "transcript": gr.HighlightedText(
            label="Transcript: each word shaded by how much the top label's Words stage looked at it (darker = more)",
            show_legend=False, elem_id="transcript", render=False),
        "summary": gr.Markdown(label="Summary: top label, modalities, contributions, timings", elem_id="summary",
                               render=False),
        "warnings": gr.Markdown(label="Warnings about the input", elem_id="warnings", render=False),
        "result": gr.JSON(label="Result", render=False),
        "download": gr.File(label="Download the result", render=False),
        "figures_image": gr.File(label="Download these figures as one image (PNG)", elem_id="figures-image",
                                 render=False),
        "clip_id": gr.Textbox(label="clip_id (for the rescore API)", interactive=False, elem_id="clip-id", render=False),
        "segments": DescribedPlot(label="Utterances over time", elem_id="segments", **figure),
        "segment_choice": gr.Dropdown([WHOLE_CLIP], value=WHOLE_CLIP, label="Show every panel for",
                                      elem_id="segment-choice", visible=False, render=False),
        "segments_csv": gr.File(label="Download the utterances (CSV)", render=False),
        "label_note": gr.Markdown(elem_id="label-note", render=False),
        "stale": gr.Markdown(elem_id="stale", render=False),
        "media_note": gr.Markdown(elem_id="media-note", render=False),
        "heading": gr.Markdown(label="What the panels show", elem_id="heading", render=False),
    }
    return {name: components[name] for name in PAGE_OUTPUT_NAMES}
