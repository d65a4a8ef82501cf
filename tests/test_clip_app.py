"""CLIP tab through the Gradio API (the whole app in-process): search, classification, the
contrastive matrix, the embedding map, and the refusals (bad input, files of the server)."""
from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from playground.clip import service as cs

pytestmark = pytest.mark.slow   # the whole app in-process, the model and the gallery index: seconds each
ROOT = Path(__file__).resolve().parents[1]
SNEAKER = ROOT / "assets" / "clip" / "examples" / "fashion_sneaker.png"
FASHION = cs.FASHION_LABEL_TEXT
ENSEMBLE = cs.TEMPLATE_MODES[1]


def _array(v) -> np.ndarray:
    """A plotly JSON array: a list, or (plotly 6) a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        shape = [int(n) for n in str(v.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).reshape(shape)
    return np.asarray(v, dtype=float)


def test_clip_text_search_returns_ranked_results(client):
    gallery, md = client.predict("rocket", 5, api_name="/clip_search_text")
    assert len(gallery) == 5
    scores = [float(item["caption"].split(" · ")[0]) for item in gallery]
    assert scores == sorted(scores, reverse=True)
    assert "Top 5" in md


def test_clip_image_search_finds_the_query_itself(client):
    # the rocket emoji example is pixel-identical to the gallery's rocket emoji: it must come first
    rocket = ROOT / "assets" / "clip" / "examples" / "emoji_rocket.png"
    gallery, md = client.predict(handle_file(str(rocket)), 3, api_name="/clip_search_image")
    assert gallery[0]["caption"].endswith("· rocket")
    assert float(gallery[0]["caption"].split(" · ")[0]) > 0.95


def test_clip_classify_probabilities(client):
    label, md = client.predict(handle_file(str(SNEAKER)), FASHION, ENSEMBLE, "", 0.05,
                               api_name="/clip_classify")
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(probs) == {s.strip() for s in FASHION.split(",")}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert "cosine" in md


def test_clip_classify_refuses_bad_input(client):
    with pytest.raises(AppError, match="at least two labels"):
        client.predict(handle_file(str(SNEAKER)), "cat", ENSEMBLE, "", 0.05, api_name="/clip_classify")
    with pytest.raises(AppError, match="exactly one"):
        client.predict(handle_file(str(SNEAKER)), "cat, dog", "my template", "a {} {}", 0.05, api_name="/clip_classify")
    with pytest.raises(AppError, match="Templates must be one of: .* \\(got 'rm -rf'\\)"):
        client.predict(handle_file(str(SNEAKER)), "cat, dog", "rm -rf", "", 0.05, api_name="/clip_classify")


def test_clip_upload_refuses_a_file_that_is_not_an_image(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(AppError, match="Upload 1: that file is not an image"):
        client.predict([handle_file(str(bad))], api_name="/clip_upload")


def _raw_call(app_url: str, api_name: str, data: list) -> str:
    """POST to the queue API as any HTTP client could, and return the event stream's text."""
    req = urllib.request.Request(f"{app_url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
    return urllib.request.urlopen(f"{app_url}gradio_api/call/{api_name}/{event}", timeout=120).read().decode()


@pytest.mark.parametrize("path", [str(SNEAKER), "/etc/passwd", str(ROOT / "app.py")])
def test_clip_no_server_file_reachable(app_url, path):
    """A client naming a file of the server (even a valid image of ours) gets an error, never its content."""
    fd = {"path": path, "meta": {"_type": "gradio.FileData"}}
    out = _raw_call(app_url, "clip_classify", [fd, FASHION, ENSEMBLE, "", 0.05])
    assert "event: error" in out and "confidences" not in out
    out = _raw_call(app_url, "clip_upload", [[fd]])
    assert "event: error" in out and "upload 1" not in out


def test_clip_matrix_and_loss(client):
    fig, md, thumbs = client.predict("red apple\nrocket\ncat face", "red apple\nrocket\ncat face", 0.07,
                                     api_name="/clip_matrix")
    assert "InfoNCE loss of this batch" in md and len(thumbs) == 3
    cosines = _array(json.loads(fig["plot"])["data"][0]["z"])
    assert cosines.shape == (3, 3) and np.all(np.abs(cosines) <= 1 + 1e-6)
    assert np.argmax(cosines, axis=1).tolist() == [0, 1, 2]    # each name nearest its own emoji
    with pytest.raises(AppError, match="No gallery image is called “no such picture here”"):
        client.predict("a", "no such picture here", 0.07, api_name="/clip_matrix")
    with pytest.raises(AppError, match="No gallery image is called “/etc/passwd”"):
        client.predict("a", "/etc/passwd", 0.07, api_name="/clip_matrix")


def test_clip_embedding_map(client):
    fig, md = client.predict(20, api_name="/clip_map")
    assert "Modality gap" in md and f"({cs.GAP_SWAPS} times)" in md
    traces = json.loads(fig["plot"])["data"]
    assert [t["name"] for t in traces] == ["matched pair", "images", "texts"]
    assert _array(traces[1]["x"]).shape == _array(traces[2]["y"]).shape == (20,)


def test_clip_result_click_needs_a_click(client):
    with pytest.raises(AppError, match="Click one of the results to search with it"):
        client.predict(5, api_name="/clip_search_result")


def test_clip_load_calls_run(client):
    from playground.core import settings

    for api, args in cs.Service(settings.from_env()).load_calls():
        client.predict(*args, api_name="/" + api)
