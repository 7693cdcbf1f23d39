"""The Live tab's events: camera frames and microphone chunks in, bars, a rolling chart and a status out.

One `LiveSession` per visitor (by Gradio's session hash), created on their first frame and
forgotten when they close the tab (or after LIVE_IDLE_SECONDS without a frame). Frames that
arrive while the visitor's last frame is being scored are dropped by the session; here they
become skipped updates, so nothing queues behind a slow frame.
"""

from __future__ import annotations

import html
import logging
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch

from demo.figures import label_colours, nice_ticks, spread
from demo.model_store import ModelStore
from demo.palette import LabelColours
from demo.served_files import prune
from merclip import MerClip, MerClipError
from merclip.errors import LabelError
from merclip.media import Face
from merclip.reading import (CHUNK_SECONDS, HISTORY_SECONDS, MICROPHONE_CHANNELS, MICROPHONE_RATES, Analyzer,
                             LiveReading, LiveSession)
from merclip.speech import SpeechRecognizer, prepare_live_recognizer

log = logging.getLogger(__name__)

# The browser says why a camera or microphone cannot be opened only to the page's script, and Gradio's
# webcam then just offers its button again. This reports it under the Live tab's camera.
DEVICE_NOTE_HEAD = """<script>
(() => {
  const say = (text) => {
    const note = document.querySelector('#live-device-note');
    if (note) { note.textContent = text; note.hidden = !text; }
  };
  const why = (error, what) => ({
    NotAllowedError: `The ${what} is blocked: allow it for this site (the icon in the address bar), then try again.`,
    NotFoundError: `No ${what} was found on this device.`,
    NotReadableError: `The ${what} is in use by another program, or the system refused it.`,
    OverconstrainedError: `The ${what} cannot give the picture or sound asked for.`,
  }[error && error.name] || `The ${what} could not be opened (${error && error.name || error}).`);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    document.addEventListener('click', (event) => {
      if (event.target.closest('#live-camera, #live-microphone'))
        say('This browser offers no camera here: the page must be opened over HTTPS (or on localhost).');
    }, true);
    return;
  }
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const what = constraints && constraints.video ? 'camera' : 'microphone';
    try { const stream = await open(constraints); say(''); return stream; }
    catch (error) { say(why(error, what) + ' You can still record or upload a clip in the "Analyse a clip" tab.'); throw error; }
  };
})();
</script>"""

# One Record button: the camera's. The microphone (its own Record and Stop hidden by the page's CSS) starts and
# stops with it while "Listen too" is ticked, and follows the box when it is changed during a stream. The
# camera's button says "stop recording" while it streams; a click is seen before the camera handles it.
MICROPHONE_FOLLOWS_CAMERA_HEAD = """<script>
(() => {
  const streaming = () => !!document.querySelector('#live-camera button.capture-button [title="stop recording"]');
  const follow = (cameraOn) => {
    const microphone = document.querySelector('#live-microphone');
    const listen = document.querySelector('#live-listen input');
    if (!microphone) return;
    const start = microphone.querySelector('button.record-button');
    const stop = microphone.querySelector('button.stop-button');
    if (cameraOn && listen && listen.checked && start) start.click();
    if (!(cameraOn && listen && listen.checked) && stop) stop.click();
  };
  document.addEventListener('click', (event) => {
    const button = event.target.closest && event.target.closest('#live-camera button.capture-button');
    if (button) { const wasOn = streaming(); setTimeout(() => follow(!wasOn), 0); }
  }, true);
  document.addEventListener('change', (event) => {
    if (event.target.closest && event.target.closest('#live-listen')) follow(streaming());
  }, true);
})();
</script>"""

KEPT_LIVE_CLIPS = 16  # recent clips kept for Gradio to copy: a few seconds' worth of clicks
LIVE_IDLE_SECONDS = 300  # a session without frames for this long is forgotten (a tab closed without notice)
CHART_STEP_SECONDS = 0.25  # the rolling chart keeps a point every this often
# the rolling chart is sent at most this often: redrawing its ~800 points in the browser at every
# frame halved the rate at which the bars could follow the face (3.5 updates/s on 2 cores)
CHART_EVERY_SECONDS = 1.0
LISTENING = "listening…"  # the Heard box from Record until the first words
NOTHING_RECORDED = "⚠️ Nothing recorded yet: press *Record* under the camera first, then analyse its last seconds."


class LiveService:
    """Live sessions of the page's visitors, scored by one analyzer (`analyzer()` loads it on first use)."""

    def __init__(self, analyzer: Callable[[], Analyzer], clips: Path, where: str) -> None:
        self.analyzer = analyzer
        self.clips = clips  # the recent clips handed to the clip tab (Gradio copies them)
        self.where = where  # what the page says about where live frames are scored
        self._sessions: dict[str, LiveSession] = {}
        self._seen: dict[str, float] = {}
        self._charted: dict[str, tuple[float, tuple[str, ...]]] = {}  # each visitor's chart: when last sent, its labels
        self._lock = threading.Lock()

    def prepare_in_background(self) -> threading.Thread:
        """Start live mode's Whisper process now rather than at a visitor's first sound: started then, beside a
        streaming camera (it runs only on what the frames leave of the CPU), it took ~4 s, and the first words
        came ~12 s after Record."""
        thread = threading.Thread(target=self._prepare, name="merclip-live-whisper", daemon=True)
        thread.start()
        return thread

    def _prepare(self) -> None:
        try:
            prepare_live_recognizer(self.analyzer().recognizer)
        except MerClipError as exc:  # the page says why the models cannot load; a visitor's first sound says the rest
            log.warning("merclip: live transcription not started ahead: %s", exc)

    @property
    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def session(self, key: str, labels: str) -> LiveSession:
        """The visitor's session, created with `labels` on their first frame."""
        with self._lock:
            self._forget_idle()
            self._seen[key] = time.monotonic()
            if key in self._sessions:
                return self._sessions[key]
        analyzer = self.analyzer()  # the first visitor may wait for the models; the others need not wait on them
        with self._lock:
            return self._sessions.setdefault(key, LiveSession(analyzer, labels))

    def forget(self, key: str) -> None:
        """The visitor left: their frames, sound and history go."""
        with self._lock:
            self._sessions.pop(key, None)
            self._seen.pop(key, None)
            self._charted.pop(key, None)

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - LIVE_IDLE_SECONDS
        for key in [k for k, seen in self._seen.items() if seen < cutoff]:
            self._sessions.pop(key, None)
            self._seen.pop(key, None)
            self._charted.pop(key, None)

    def on_frame(self, frame: np.ndarray | None, labels: str, colours: LabelColours, request: gr.Request) -> tuple:
        """A camera frame: (bars, rolling chart, status, label note), or skipped updates if it was dropped;
        `colours`: the visitor's colour of each label, the same as in the clip tab."""
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            session = self.session(request.session_hash, labels)
            note = ""
            try:
                session.set_labels(labels)
            except LabelError as exc:
                note = f"⚠️ {html.escape(str(exc))} (still showing: {', '.join(session.labels)})"
            reading = session.offer(frame)
        except MerClipError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {html.escape(str(exc))}", gr.skip()
        except Exception as exc:  # keep the stream and the server going; say what happened
            log.exception("merclip: live frame failed")
            note = f"⚠️ internal error while scoring a frame ({type(exc).__name__}); the stream goes on"
            return gr.skip(), gr.skip(), note, gr.skip()
        if reading is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        shown = label_colours(reading.prediction, palette=colours)
        return bars_frame(reading, shown), self._chart(request.session_hash, session, shown), status_line(
            session, reading, self.where), note

    def _chart(self, key: str, session: LiveSession, colours: Mapping[str, str]) -> str | dict:
        """The rolling chart, if it was last sent CHART_EVERY_SECONDS ago (or its labels changed)."""
        now, labels = time.monotonic(), tuple(session.labels)
        with self._lock:
            sent, charted = self._charted.get(key, (0.0, ()))
            due = now - sent >= CHART_EVERY_SECONDS or labels != charted
            if due:
                self._charted[key] = (now, labels)
        return history_frame(session, colours) if due else gr.skip()

    def on_sound(self, chunk: str | None, request: gr.Request) -> str | dict:
        """A microphone chunk (the path of the WAV the browser sent): the words heard so far, when a new
        window was transcribed, or "listening…" until the first words."""
        if chunk is None:
            return gr.skip()
        with self._lock:
            session = self._sessions.get(request.session_hash)
        if session is None:  # the camera has not started yet: its first frame makes the session
            return LISTENING
        try:
            rate, samples = microphone_wav(chunk)
            if not session.hear(samples, rate):
                return gr.skip() if session.transcript else LISTENING
        except MerClipError as exc:  # a text box shows text as it is: no HTML escapes
            return f"⚠️ {exc}"
        except Exception as exc:  # keep the microphone stream and the server going; say what happened
            log.exception("merclip: live sound failed")
            return f"⚠️ internal error while listening ({type(exc).__name__}); the stream goes on"
        heard = " ".join(session.transcript) or LISTENING
        if session.skipped_utterances:
            heard += (f"\n⚠️ {session.skipped_utterances} of your utterances went untranscribed: "
                      "speech recognition is behind, shared with other visitors")
        return heard

    def on_analyse_last_note(self, request: gr.Request) -> str:
        """What stands beside "Analyse the last seconds" when it is pressed: why nothing can be analysed yet
        (no camera started), or nothing. Said in words there rather than in an error toast."""
        with self._lock:
            session = self._sessions.get(request.session_hash)
        return NOTHING_RECORDED if session is None or not session.has_frames() else ""

    def on_analyse_last_clip(self, seconds: float, request: gr.Request) -> tuple:
        """The last seconds of the visitor's camera and microphone as a video for the Analyse tab. Nothing
        recorded stops the event's chain without a toast (`on_analyse_last_note` has said why beside the
        button)."""
        with self._lock:
            session = self._sessions.get(request.session_hash)
        if session is None:
            raise gr.Error(NOTHING_RECORDED, visible=False, print_exception=False)
        self.clips.mkdir(parents=True, exist_ok=True)
        prune(self.clips, keep=KEPT_LIVE_CLIPS)
        with tempfile.NamedTemporaryFile(dir=self.clips, prefix="live-", suffix=".mp4", delete=False) as handle:
            path = Path(handle.name)
        try:
            written = session.recent_clip(path, seconds)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        if written is None:
            path.unlink(missing_ok=True)
            raise gr.Error(NOTHING_RECORDED, visible=False, print_exception=False)
        return str(path), gr.Tabs(selected="clip")

    def on_unload(self, request: gr.Request) -> None:
        """The page's unload event."""
        self.forget(request.session_hash)


def microphone_wav(path: str | Path) -> tuple[int, np.ndarray]:
    """(rate, samples) of a microphone chunk as the browser streams it: one WAV header, then every 0.1 s
    recorded since the last chunk was answered. The header gives the length of the first 0.1 s only, and
    Gradio's own reader stopped there: ~40% of a visitor's speech was lost on a busy server. All of the data
    is read here; its size is checked before it is read, and its rate and channels by `microphone_sound`."""
    with open(path, "rb") as wav:
        header = wav.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise MerClipError("microphone sound refused: it is not a WAV chunk")
        form = None
        while (chunk := wav.read(8)) and len(chunk) == 8:
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"fmt " and size >= 16 and len(fields := wav.read(16)) == 16:
                form = struct.unpack("<HHIIHH", fields)
                wav.seek(size - 16, 1)
            elif kind == b"data" and form is not None:
                return _wav_samples(wav, path, form)
            else:
                wav.seek(size + size % 2, 1)
    raise MerClipError("microphone sound refused: its WAV has no format or no data")


def _wav_samples(wav, path: str | Path, form: tuple[int, ...]) -> tuple[int, np.ndarray]:
    """The samples from the reader's position to the end of the file, as the WAV format `form` says."""
    encoding, channels, rate, _, _, bits = form
    types = {(1, 16): np.int16, (1, 32): np.int32, (3, 32): np.float32, (3, 64): np.float64}
    if (encoding, bits) not in types or not 1 <= channels <= MICROPHONE_CHANNELS:
        raise MerClipError(f"microphone sound refused: {channels} channels of {bits}-bit samples (format "
                           f"{encoding}); expected 1 or {MICROPHONE_CHANNELS} channels of 16/32-bit PCM or float")
    frame = channels * bits // 8
    most = int(CHUNK_SECONDS * min(max(rate, MICROPHONE_RATES[0]), MICROPHONE_RATES[1])) * frame  # before reading
    if os.path.getsize(path) - wav.tell() > most:
        raise MerClipError(f"microphone sound refused: a chunk over {CHUNK_SECONDS:.0f} s")
    data = wav.read()
    samples = np.frombuffer(data[: len(data) // frame * frame], types[encoding, bits])
    return rate, samples.reshape(-1, channels) if channels > 1 else samples


def live_service(store: ModelStore, clips: Path) -> LiveService:
    """Live frames are scored by the page's start-up models. On ZeroGPU they are scored on the CPU:
    a GPU slot per frame would spend a visitor's quota in seconds, and the main process, where the
    stream is, holds no GPU. CLIP and the head then need a CPU copy, loaded on first use (see
    `CpuCopy`); Whisper and the face detector are the start-up analyzer's."""
    if store.place is None:
        where = "the GPU" if store.device != "cpu" and torch.cuda.is_available() else "the CPU"
        return LiveService(lambda: store.analyzer(store.default), clips, where)
    on_cpu = ModelStore(store.default, "cpu", None, store.checkpoints, max_models=1)
    return LiveService(lambda: CpuCopy(store.analyzer(store.default), on_cpu.analyzer(on_cpu.default).model),
                       clips, "the CPU (this Space lends its GPU per analysis, not per frame)")


class CpuCopy(Analyzer):
    """The start-up analyzer with a CPU copy of its model, for ZeroGPU's live frames.

    The start-up model cannot be shared: `spaces` packs the weights placed on "cuda" to disk at
    launch and frees them in this process (so this copy is the only one here), and they are
    float16, which a CPU without AVX512-FP16 runs ~10x slower than float32. Whisper and the face
    detector already run on the CPU in this process: they are shared, not loaded twice.
    """

    def __init__(self, start_up: Analyzer, model: MerClip) -> None:
        super().__init__(model, start_up.whisper_spec)
        self.start_up = start_up

    @property
    def recognizer(self) -> SpeechRecognizer | None:
        return self.start_up.recognizer

    def face_crops(self, images: list[np.ndarray], detect: bool, check: Callable[[], None] = lambda: None
                   ) -> tuple[list[np.ndarray], list[Face | None]]:
        return self.start_up.face_crops(images, detect, check)


def bars_frame(reading: LiveReading, colours: Mapping[str, str]) -> gr.BarPlot:
    """The smoothed probabilities, most probable first, each bar named with its percentage and in its
    label's colour (the clip tab's), the winner said in the title; the scale fits the values, so a
    change of a few points shows while you move."""
    order = np.argsort(reading.smoothed)[::-1]
    names = [f"{reading.labels[i]} {reading.smoothed[i]:.0%}" for i in order]
    data = pd.DataFrame({"bar": names, "label": [reading.labels[i] for i in order],
                         "probability": np.round(reading.smoothed[order], 4)})
    top = float(reading.smoothed[order[0]])
    # sorted by value, not by a list of the names: a list sent with the data can reach the chart a frame
    # after it, and a name it does not hold (a percentage changed) went to the end
    return gr.BarPlot(data, x="bar", y="probability", color="label", sort="-y", y_lim=[0, _fitted(top)],
                      color_map={label: colours[label] for label in reading.labels},
                      title=f"Now: {reading.labels[order[0]]} ({top:.0%})", x_title=" ", x_label_angle=-30,
                      colors_in_legend=[])  # the bars say their labels


def _fitted(top: float) -> float:
    """The bars' scale: a little above the largest value, in tenths (0.2 at least)."""
    return max(0.2, min(1.0, np.ceil(top * 1.15 * 10) / 10))


def history_lines(session: LiveSession) -> dict[str, list[tuple[float, float]]]:
    """Each current label's smoothed probability over the last HISTORY_SECONDS, as (seconds ago, value), a point
    every CHART_STEP_SECONDS. A label kept across a change of labels keeps its line; a new one starts where it
    was added (the lines used to vanish at every change)."""
    history = list(session.history)
    if not history:
        return {}
    now, lines, last = history[-1][0], {label: [] for label in session.labels}, None
    for at, labels, probs in history:
        if last is not None and at - last < CHART_STEP_SECONDS:
            continue
        last = at
        for label, p in zip(labels, probs):
            if label in lines:
                lines[label].append((round(at - now, 2), float(p)))
    return {label: points for label, points in lines.items() if points}


def history_frame(session: LiveSession, colours: Mapping[str, str]) -> str:
    """The rolling chart as an SVG: seconds ago on x (-30 to 0), a y range fitted to the values, each line in its
    label's colour and named at its end. Text stays at its size on any screen: only the lines' box stretches."""
    lines = history_lines(session)
    if not lines:
        return HISTORY_EMPTY
    values = [p for points in lines.values() for _, p in points]
    low, high = _fitted_range(min(values), max(values))

    def y(p: float) -> float:  # pixels from the top
        return CHART_TOP + (high - p) / (high - low) * CHART_HEIGHT

    def x(ago: float) -> float:  # percent of the width
        return CHART_LEFT + CHART_WIDTH * (ago + HISTORY_SECONDS) / HISTORY_SECONDS

    parts = [f'<svg class="live-history" width="100%" height="{CHART_TOP + CHART_HEIGHT + 44}" role="img" '
             f'aria-label="{html.escape(_history_summary(lines))}" font-size="12" font-family="sans-serif" '
             'fill="currentColor">',  # the page's text colour, light or dark
             f'<text x="{CHART_LEFT}%" y="12" font-weight="bold">The last {HISTORY_SECONDS:.0f} seconds '
             '(smoothed probabilities)</text>']
    for tick in nice_ticks(low, high):
        parts += [f'<line x1="{CHART_LEFT}%" x2="{CHART_LEFT + CHART_WIDTH}%" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                  f'stroke="#8884" />',
                  f'<text x="{CHART_LEFT - 1}%" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.0%}</text>']
    for tick in range(-int(HISTORY_SECONDS), 1, 10):
        parts.append(f'<text x="{x(tick):.2f}%" y="{CHART_TOP + CHART_HEIGHT + 16}" text-anchor="middle">{tick}</text>')
    parts.append(f'<text x="{CHART_LEFT + CHART_WIDTH / 2}%" y="{CHART_TOP + CHART_HEIGHT + 34}" '
                 'text-anchor="middle">seconds ago</text>')
    # the lines in a box stretched to the plot's width; their strokes keep their width
    parts.append(f'<svg x="{CHART_LEFT}%" y="{CHART_TOP}" width="{CHART_WIDTH}%" height="{CHART_HEIGHT}" '
                 f'viewBox="{-HISTORY_SECONDS} 0 {HISTORY_SECONDS} {CHART_HEIGHT}" preserveAspectRatio="none">')
    for label, points in lines.items():
        drawn = " ".join(f"{t},{y(p) - CHART_TOP:.1f}" for t, p in points)
        parts.append(f'<polyline class="live-line" data-label="{html.escape(label)}" points="{drawn}" fill="none" '
                     f'stroke="{colours[label]}" stroke-width="2.5" vector-effect="non-scaling-stroke" />')
    parts.append("</svg>")
    ends = {label: y(points[-1][1]) for label, points in lines.items()}  # names within the plot's height
    for label, at in zip(ends, spread(list(ends.values()), NAME_GAP, CHART_TOP, CHART_TOP + CHART_HEIGHT)):
        ago, value = lines[label][-1]
        parts.append(f'<text class="live-line-name" x="{x(ago) + 1:.2f}%" y="{at + 4:.1f}" fill="{colours[label]}" '
                     f'font-weight="bold">{html.escape(label)} {value:.0%}</text>')
    return "".join(parts) + "</svg>"


HISTORY_EMPTY = f"<p>The last {HISTORY_SECONDS:.0f} seconds: a line per label, from the first frames on.</p>"
CHART_LEFT, CHART_WIDTH = 11.0, 62.0  # percent of the chart's width: the tick labels, the lines (names to the right)
CHART_TOP, CHART_HEIGHT = 24, 230  # pixels
NAME_GAP = 14  # pixels between the names at the lines' ends


def _fitted_range(low: float, high: float) -> tuple[float, float]:
    """The y range: the values with a margin, at least 10 points tall, within 0-1."""
    middle, half = (low + high) / 2, max((high - low) * 0.6, 0.05)
    low, high = max(0.0, middle - half), min(1.0, middle + half)
    return (low, max(high, low + 0.1)) if high - low < 0.1 else (low, high)


def _history_summary(lines: dict[str, list[tuple[float, float]]]) -> str:
    """The chart in words, for screen readers: each label's value now."""
    now = sorted(((points[-1][1], label) for label, points in lines.items()), reverse=True)
    return f"The last {HISTORY_SECONDS:.0f} seconds; now: " + ", ".join(f"{label} {p:.0%}" for p, label in now)


def status_line(session: LiveSession, reading: LiveReading, where: str) -> str:
    face = "face found" if reading.face_found else "no face found: the whole frame is scored"
    stages = "vision" + (" + words and voice" if "text" in reading.prediction.modalities
                         else " + voice" if "audio" in reading.prediction.modalities else " only")
    return (f"**{session.updates_per_second():.1f} updates/s** · {reading.latency_ms:.0f} ms per frame · "
            f"{session.scored} frames scored · {face} · {stages} · {session.dropped} skipped while busy · "
            f"scored on {where}")


