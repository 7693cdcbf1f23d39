"""Whisper for live mode, in a process of its own: one CPU thread, scheduled only when the frames leave a core idle.

On two cores, the camera's frames are scored by torch on two threads that meet at a barrier after
every operation. A transcription running beside them takes a core away for a scheduler time slice at
a time, and each barrier then waits for it: scoring fell from 6-7 to 1-3 frames per second while
Whisper ran (a lower nice value only softened it: 4.2 at nice 10, 4.7 at 19). Here Whisper runs in
a process of its own, on one thread, under SCHED_IDLE: any waking frame thread preempts it at once,
and it runs in the gaps the frames leave (the Python between operations and frames), which on this
bench still heard each sentence within about 2.5 s. Under other sustained CPU work it would wait for
that work: a window not heard within BOOST_AFTER_SECONDS is heard at normal priority (see `_Watchdog`).
The clip analysis keeps the process's own Whisper and its speed.

The worker is this module run as a script (without the package's torch; no re-import of the app's
main module, as multiprocessing's spawn would do), started with its end of a socket pair. It only
ever receives float32 samples as raw bytes and answers in JSON: nothing is pickled either way. It
ends when this process closes its end of the socket, or exits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

import numpy as np

from merclip.errors import MerClipError, first_line
from merclip.speech.transcribe import SpeechRecognizer, Transcript, Word, whisper_model_path

CPU_THREADS = 1  # one core for Whisper at most; the frames keep the other
BOOST_AFTER_SECONDS = 1.0  # a window not heard by then runs at normal priority (see _Watchdog)

_workers: dict[str, WhisperWorker] = {}
_workers_lock = threading.Lock()


class WhisperWorker:
    """A Whisper SPEC loaded in a worker process; `transcribe` as `SpeechRecognizer.transcribe` (one at a time).

    A worker that dies or fails to load raises a readable MerClipError; the next call starts a new one."""

    def __init__(self, spec: str, english_only: bool) -> None:
        self.spec = spec
        self.english_only = english_only
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The worker's process id, once it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def transcribe(self, waveform: np.ndarray) -> Transcript:
        """Words with start/end seconds of a 16 kHz window, heard by the worker."""
        with self._lock:
            reply = self._ask(np.ascontiguousarray(waveform, np.float32).tobytes())
        words = [Word(word, start, end) for word, start, end in reply["words"]]
        return Transcript(text=" ".join(w.word for w in words), words=words)

    def start(self) -> None:
        """Start the worker and load its model now (a few seconds), so the first utterance does not wait for it.
        A worker that has died since is replaced without a word: no utterance was waiting on it."""
        with self._lock:
            self._connection(say_an_ended_worker=False)

    def close(self) -> None:
        """End the worker (it exits when its pipe closes; one that does not is killed)."""
        with self._lock:
            self._stop()

    def _ask(self, window: bytes) -> dict:
        conn = self._connection()
        try:
            conn.send_bytes(window)
            return self._reply(conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise _ended(self._stop()) from exc

    def _connection(self, say_an_ended_worker: bool = True) -> Connection:
        """The socket to a running worker, started (and its model loaded) if there is none. A worker that
        died since the last window (killed, out of memory) is said, whether its end is seen here or only
        when the window is sent (which depends on how soon the system reaps it); the next call starts one."""
        if self._process is not None and self._process.poll() is not None:
            code = self._stop()
            if say_an_ended_worker:
                raise _ended(code)
        if self._process is None:
            mine, theirs = socket.socketpair()
            with mine, theirs:
                arguments = [str(theirs.fileno()), whisper_model_path(self.spec), "en" if self.english_only else "any",
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                self._process = subprocess.Popen([sys.executable, "-c", _WORKER, *arguments],
                                                 pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
                self._conn = Connection(os.dup(mine.fileno()))
            try:
                self._reply(self._conn.recv_bytes())
            except (EOFError, OSError) as exc:
                code = self._stop()
                raise MerClipError(f"live transcription could not start: its Whisper process ended (exit code {code})") from exc
            except MerClipError:
                self._stop()
                raise
        return self._conn

    def _reply(self, data: bytes) -> dict:
        reply = json.loads(data)
        if "error" in reply:
            raise MerClipError(f"live transcription failed: {reply['error']}")
        return reply

    def _stop(self) -> int | None:
        """Close the socket and end the worker (killed if it does not exit); its exit code."""
        if self._conn is not None:
            self._conn.close()
        code = None
        if self._process is not None:
            try:
                code = self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
        self._conn, self._process = None, None
        return code


def _ended(code: int | None) -> MerClipError:
    return MerClipError(f"live transcription stopped: its Whisper process ended (exit code {code}); "
                        "the next utterance starts a new one")


def live_recognizer(recognizer: SpeechRecognizer | None) -> SpeechRecognizer | WhisperWorker | None:
    """What transcribes live speech: the process-wide worker for a Whisper on the CPU (one per SPEC),
    the recognizer itself on a GPU (it takes no CPU from the frames), None without Whisper."""
    if recognizer is None or recognizer.model.model.device != "cpu":
        return recognizer
    with _workers_lock:
        if recognizer.spec not in _workers:
            _workers[recognizer.spec] = WhisperWorker(recognizer.spec, recognizer.english_only)
        return _workers[recognizer.spec]


def prepare_live_recognizer(recognizer: SpeechRecognizer | None) -> None:
    """Start the worker that will hear live speech (a few seconds), so a first utterance does not wait for it."""
    live = live_recognizer(recognizer)
    if isinstance(live, WhisperWorker):
        live.start()


# `python -m merclip.speech.live_hearing` without the packages' __init__s (merclip's loads torch and CLIP,
# ~550 MB the worker never uses): merclip and merclip.speech are empty namespaces over their folders.
_WORKER = """
import os, runpy, sys, types
for name, folder in (("merclip", sys.argv[4]), ("merclip.speech", os.path.join(sys.argv[4], "speech"))):
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
runpy.run_module("merclip.speech.live_hearing", run_name="__main__")
"""


def _serve(conn: Connection, path: str, english_only: bool) -> None:
    """The worker: load the Whisper model at `path` on one thread under SCHED_IDLE, then transcribe each
    window it is sent until the pipe closes. Failures are sent back as one line; the worker keeps serving."""
    from faster_whisper import WhisperModel

    watchdog = _Watchdog()  # before the worker turns idle: its thread stays normal
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # before the model's threads start: they inherit it
    try:
        model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=CPU_THREADS)
    except Exception as exc:  # noqa: BLE001 (any load failure is the caller's message, not a dead pipe)
        conn.send_bytes(json.dumps({"error": f"Whisper model at {path} could not be loaded: {first_line(exc)}"}).encode())
        return
    recognizer = SpeechRecognizer(model, path, english_only)
    recognizer.transcribe(np.zeros(16000, np.float32))  # loads the VAD's model now rather than at the first words
    conn.send_bytes(b"{}")
    heard = 0
    while True:
        try:
            window = np.frombuffer(conn.recv_bytes(), np.float32)
        except EOFError:  # the live process closed its end, or ended
            return
        heard += 1
        watchdog.hearing(heard)
        try:
            reply = {"words": [[w.word, w.start, w.end] for w in recognizer.transcribe(window).words]}
        except Exception as exc:  # noqa: BLE001 (a window Whisper cannot read: said; the next is heard)
            reply = {"error": first_line(exc)}
        finally:
            watchdog.heard()
        try:
            conn.send_bytes(json.dumps(reply).encode())
        except OSError:  # the live process went away while this window was heard
            return


class _Watchdog:
    """A window not heard within BOOST_AFTER_SECONDS runs in the normal scheduling class until it is done.
    SCHED_IDLE yields to every process on the machine, not only to the frames: on a busy 2-core host a
    sentence waited 10 s and more, and the first live words came ~20 s after Record. Its thread is made
    before the worker turns idle, so it wakes on time; the worker's threads go back to idle before the
    window's words are sent."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._window = 0  # the window being heard, 0 between windows
        self._boosted = False
        self._thread = threading.Thread(target=self._watch, name="merclip-whisper-watchdog", daemon=True)
        self._thread.start()

    def hearing(self, window: int) -> None:
        with self._changed:
            self._window = window
            self._changed.notify()

    def heard(self) -> None:
        with self._changed:
            self._window = 0
            if self._boosted:
                _schedule_all(os.SCHED_IDLE, but=self._thread.native_id)
                self._boosted = False
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                self._changed.wait_for(lambda: self._window)
                window = self._window
                if not self._changed.wait_for(lambda: self._window != window, BOOST_AFTER_SECONDS):
                    _schedule_all(os.SCHED_OTHER, but=self._thread.native_id)
                    self._boosted = True
                    self._changed.wait_for(lambda: self._window != window)


def _schedule_all(policy: int, but: int | None) -> None:
    """Every thread of this process but `but` (Whisper's own and the VAD's included) to `policy`."""
    for task in os.listdir("/proc/self/task"):
        if int(task) != but:
            try:
                os.sched_setscheduler(int(task), policy, os.sched_param(0))
            except ProcessLookupError:  # a thread that just ended
                pass


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3] == "en")
