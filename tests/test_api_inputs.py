"""Every endpoint in the app's own API listing, sent bad input as a stranger with a script would.

The test walks `/gradio_api/info` itself, so a new endpoint is covered without editing it. For each
parameter of each endpoint it sends, one at a time (the other parameters at their defaults; `_values`
spreads them over the parameters of an endpoint with very many), values of the wrong type, None, NaN and infinities, huge and negative numbers, empty, huge and
control-character text, unknown choices, and files that are not images, empty, truncated, of a huge
pixel count, or HTML. Every call must be answered:
- with a gr.Error whose message names the field (a word of the parameter's label or name), within
  `ERROR_SECONDS`; or
- normally, when the policy clamps the value (core/validate.py): a huge number becomes the maximum.
An answer with no message is an unhandled exception in the server: a failure. So is a call that
does not answer in time. Afterwards the server still serves.

The Prompt lab's language model is swapped for the tiny random one (tests/test_prompt_app.py does the
same), so that calls the policy accepts cost milliseconds instead of minutes.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from conftest import ARTIFACTS

ERROR_SECONDS = 5.0          # the bound for answering bad input
ANSWER_SECONDS = 120.0       # a clamped (valid) call may run the model at its largest setting
GENERIC = (None, "")         # what an unhandled exception looks like from outside
FEW_PARAMS, PER_PARAM = 3, 2   # an endpoint with more parameters sends each of them PER_PARAM bad values...
MANY_PARAMS = 40               # ...and one with more than this (a lesson link: every control of every lab), one
WALKERS = 3                    # endpoints walked at once
# the other parameters' values while one is sent bad values, where the endpoint's defaults run a model
# at length (matched by parameter name or label): the bad value is what is tested, not the model
CHEAP_BASE = {"/prompt_compare": {"max_new_tokens": 8, "n": 2}}
FIRST = ("/prompt_compare", "/tour_reveal", "/lesson_open", "/sd_compare")   # the longest walks
# (tests/artifacts/api_inputs_seconds.txt) start first, so that the walk does not end on one of them

pytestmark = pytest.mark.slow


def _png(w: int, h: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 1 if mode == "1" else 128).save(buf, "PNG")
    return buf.getvalue()


BAD_FILES = {
    "text.txt": b"this is not an image\n",
    "empty.png": b"",
    "truncated.png": _png(64, 64)[:60],
    "huge.png": _png(12000, 12000, "1"),                 # 144 megapixels in a few kB
    "page.html": b"<!doctype html><script>alert(1)</script>",
}
NUMBERS = ["lots", None, math.nan, math.inf, -math.inf, [1], {"x": 1}, True, 1e308, -1e308, -5]
TEXTS = [None, 12345, ["a"], "x" * 100_000, "\x00\x01\x1b[2J<script>alert(1)</script>\u202e", ""]
CHOICES = ["surely not an option", None, 3, ["a", "b"]]
CHOICE_LISTS = ["not a list", [None], ["surely not an option"], 5]
FLAGS = ["yes", None, 2]
TABLES = ["junk", {"headers": 1}, [[None]], 5]
OTHER = ["junk", None, 5, {"x": []}]


def _kind(p: dict) -> str:
    comp, typ = p["component"].lower(), str(p["python_type"]["type"])
    if comp in ("slider", "number"):
        return "number"
    if comp in ("textbox", "code", "markdown"):
        return "text"
    if comp == "checkbox":
        return "flag"
    if comp == "checkboxgroup" or typ.startswith("list[Literal"):
        return "choices"
    if comp in ("dropdown", "radio"):
        return "choice"
    if comp in ("image", "file", "sketchpad", "imageeditor", "gallery"):
        return "file"
    if comp == "dataframe":
        return "table"
    return "other"


STOP = {"the", "and", "for", "param", "with", "your", "this", "that", "from", "one", "or"}


def _names_field(msg: str, p: dict) -> bool:
    """Does the message name the parameter: its label's first token (e.g. "z[0]", "t"), or a word of its
    label or name (3+ letters; the first 5 letters suffice, so "Technique" names "Techniques")?"""
    label = str(p.get("label") or "")
    msg = msg.lower()
    first = re.match(r"\s*([A-Za-z][\w\[\]]*)", label)
    if first and re.search(r"(?<![\w\[])" + re.escape(first[1].lower()) + r"(?![\w\]])", msg):
        return True
    words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", f"{label} {p['parameter_name'].replace('_', ' ')}")} - STOP
    return any(w[:5] in msg for w in words)


def _values(values: list, i: int, n_params: int) -> list:
    """The bad values sent to parameter i of an endpoint with n_params parameters: all of them where an
    endpoint has few parameters; where it has more, PER_PARAM of them (one where it has very many), rotating
    with i so that every value still reaches several parameters of the endpoint. (Each value to every
    parameter was 4,773 calls and a third of the suite's time; a lesson endpoint checks its ~150
    parameters through the same lesson.Param rules.)"""
    if n_params <= FEW_PARAMS:
        return values
    k = 1 if n_params > MANY_PARAMS else min(PER_PARAM, len(values))
    return [values[(i * k + j) % len(values)] for j in range(k)]


def _call(http: httpx.Client, api: str, data: list) -> tuple[str, object, float]:
    """('complete' | 'error', data or message, seconds) through the public call API."""
    t0 = time.perf_counter()
    r = http.post(f"/gradio_api/call{api}", content=json.dumps({"data": data}, allow_nan=True),
                  headers={"Content-Type": "application/json"})
    if r.status_code != 200:
        return "rejected", r.text[:200], time.perf_counter() - t0
    event_id = r.json()["event_id"]
    status, payload = "none", None
    with http.stream("GET", f"/gradio_api/call{api}/{event_id}", timeout=ANSWER_SECONDS) as s:
        event = None
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                status, payload = event, json.loads(line.split(":", 1)[1])
    return status, payload, time.perf_counter() - t0


@pytest.fixture()
def tiny_llm(monkeypatch):
    from playground.prompting import models, tiny

    backend = tiny.backend()
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: backend)
    return backend


def _walk(http: httpx.Client, api: str, spec: dict, bad: dict, good: dict) -> tuple[list, int, int, float, list]:
    """Every bad value for every parameter of one endpoint: (failures, calls, errors, seconds, slow errors)."""
    failures, calls, seen_errors, spent, slow = [], 0, 0, 0.0, []
    params = spec["parameters"]
    base = [p.get("parameter_default") if p.get("parameter_has_default") else None for p in params]
    for i, p in enumerate(params):      # files: a good upload (a list of one where several are taken)
        if _kind(p) == "file" and base[i] is None:
            base[i] = [good] if "list" in str(p["python_type"]["type"]) else good
    cheap = CHEAP_BASE.get(api, {})
    for i, p in enumerate(params):
        for name in (p.get("parameter_name"), p.get("label")):
            if name in cheap:
                base[i] = cheap[name]
    assert set(cheap) <= {n for p in params for n in (p.get("parameter_name"), p.get("label"))}, (api, cheap)
    # a call that fails with defaults (it needs a click or an earlier step) may fail the same way
    # for a value the policy accepts (a huge number, clamped); any other error must name the field
    base_status, base_payload, _ = _call(http, api, base) if params else ("complete", None, 0)
    base_msg = base_payload.get("error") if base_status == "error" and isinstance(base_payload, dict) else None
    for i, p in enumerate(params):
        for value in _values(bad[_kind(p)], i, len(params)):
            data = base[:i] + [value] + base[i + 1:]
            status, payload, seconds = _call(http, api, data)
            calls += 1
            spent += seconds
            shown = repr(value)[:40]
            if status == "error":
                seen_errors += 1
                msg = payload.get("error") if isinstance(payload, dict) else payload
                if msg in GENERIC:
                    failures.append(f"{api} {p['parameter_name']}={shown}: unhandled exception")
                elif not _names_field(str(msg), p) and msg != base_msg:
                    failures.append(f"{api} {p['parameter_name']}={shown}: message does not name the field "
                                    f"({p.get('label')!r}): {str(msg)[:100]!r}")
                elif seconds > ERROR_SECONDS:      # timed again alone, after the walk (see the test)
                    slow.append((api, data, f"{api} {p['parameter_name']}={shown}"))
            elif status != "complete":
                failures.append(f"{api} {p['parameter_name']}={shown}: {status} {str(payload)[:100]}")
    return failures, calls, seen_errors, spent, slow


def test_every_endpoint_answers_bad_input(app_url, tiny_llm, capfd):
    http = httpx.Client(base_url=app_url.rstrip("/"), timeout=ANSWER_SECONDS)
    info = http.get("/gradio_api/info").json()["named_endpoints"]
    uploads = {**BAD_FILES, "good.png": _png(64, 64)}
    paths = http.post("/gradio_api/upload", files=[("files", (n, b)) for n, b in uploads.items()]).json()
    refs = {n: {"path": p, "meta": {"_type": "gradio.FileData"}, "orig_name": n} for p, n in zip(paths, uploads)}
    good = refs.pop("good.png")
    bad_files = list(refs.values()) + ["not a file", 7, {"path": None}]
    bad = {"number": NUMBERS, "text": TEXTS, "choice": CHOICES, "choices": CHOICE_LISTS, "flag": FLAGS,
           "file": bad_files, "table": TABLES, "other": OTHER}
    only = re.compile(os.environ.get("API_WALK_ONLY", ""))     # a regex of endpoints, while debugging
    walks = sorted([(api, spec) for api, spec in info.items() if only.search(api)],
                   key=lambda w: FIRST.index(w[0]) if w[0] in FIRST else len(FIRST))
    # WALKERS endpoints at a time, each walked by one thread (as several students' scripts would): the
    # server's own queue keeps each endpoint's calls in turn, and the walk takes a fraction of the time
    with ThreadPoolExecutor(WALKERS) as pool:
        done = list(pool.map(lambda w: _walk(http, *w, bad, good), walks))
    failures = [f for d in done for f in d[0]]
    # an error that took long while other endpoints ran may have waited in a shared queue (the long jobs'
    # group holds one call at a time) or for the CPU: it is timed again with nothing else running
    for api, data, what in [s for d in done for s in d[4]]:
        status, _, seconds = _call(http, api, data)
        if status == "error" and seconds > ERROR_SECONDS:
            failures.append(f"{what}: error after {seconds:.1f} s, alone")
    calls, seen_errors = sum(d[1] for d in done), sum(d[2] for d in done)
    spent = {api: d[3] for (api, _), d in zip(walks, done)}
    assert http.post("/gradio_api/call/echo", json={"data": ["still here"]}).status_code == 200
    assert _call(http, "/echo", ["still here"])[:2] == ("complete", ["still here"])
    log = capfd.readouterr().err               # the server runs in this process: its log is ours
    if "Traceback" in log:
        failures.append("the server logged a traceback:\n" + log[log.index("Traceback"):][:1500])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "api_inputs_failures.txt").write_text("\n".join(failures) + "\n")
    (ARTIFACTS / "api_inputs_seconds.txt").write_text(f"{calls} calls, {seen_errors} answered with an error\n" + "".join(f"{t:8.1f} s  {api}\n" for api, t in
                                                             sorted(spent.items(), key=lambda kv: -kv[1])))
    assert only.pattern or (calls > 500 and seen_errors > 200), (calls, seen_errors)
    assert not failures, f"{len(failures)} of {calls} calls:\n" + "\n".join(failures[:60])
