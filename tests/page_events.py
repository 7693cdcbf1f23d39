"""The page's own events, which the client API does not list, driven as the page's browser drives
them: Gradio's queue protocol (join, then the session's server-sent messages), with the header
that marks a request as the page's (`spaces` words its messages for the page by it)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Answer:
    outputs: list  # in the event's output order
    places: list[int] = field(default_factory=list)  # the places in its queue the event was told while it waited


def page_event(url: str, elem_id: str | None, event: str, given: dict[str, object], session: str | None = None,
               headers: dict[str, str] | None = None, api_name: str | None = None) -> Answer:
    """Trigger `event` of the component `elem_id` (None: the page itself, e.g. "load") with the inputs
    in `given` (by elem_id; the others as the page starts) and wait for its outputs. `api_name` picks
    one of several events with the same trigger."""
    config = httpx.get(f"{url}/config").json()
    components = {c["id"]: c for c in config["components"]}
    source = elem_id and next(c["id"] for c in components.values() if c.get("props", {}).get("elem_id") == elem_id)
    dependency = next(d for d in config["dependencies"]
                      if any(t[1] == event and (elem_id is None or t[0] == source) for t in d["targets"])
                      and (api_name is None or d.get("api_name") == api_name))

    def value(component_id: int) -> object:
        props = components[component_id].get("props", {})
        if props.get("elem_id") in given:
            return given[props["elem_id"]]
        return None if components[component_id]["type"] == "state" else props.get("value")

    session = session or uuid.uuid4().hex[:10]
    body = {"data": [value(i) for i in dependency["inputs"]], "fn_index": dependency["id"], "session_hash": session,
            "event_data": None, "trigger_id": source}
    headers = {"x-gradio-user": "app", **(headers or {})}
    httpx.post(f"{url}/gradio_api/queue/join", json=body, headers=headers, timeout=30).raise_for_status()
    places = []
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=180) as sse:
        for line in sse.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "estimation" and message.get("rank") is not None:
                places.append(message["rank"] + 1)
            elif message.get("msg") == "process_completed":
                assert message.get("success", True), message
                return Answer(message["output"]["data"], places)
    raise AssertionError(f"the {event} event of {elem_id} ended without completing")


def uploaded(url: str, path: Path) -> dict:
    """A file uploaded as the page uploads one, as the page then sends it."""
    with open(path, "rb") as handle:
        stored = httpx.post(f"{url}/gradio_api/upload", files=[("files", (path.name, handle.read()))], timeout=30)
    return {"path": stored.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
