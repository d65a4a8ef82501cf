"""Result files under concurrent students: the same picture returned to many users at once must reach
every one of them whole. Gradio names a cached result by the hash of its bytes and used to rewrite it
in place, so a download could read a file another call had just truncated ("peer closed connection
without sending complete message body"); core.ui makes those writes atomic. Before that change, the
end-to-end test below failed 77 of its 200 downloads on this 2-core machine. Also: a class's thirty
new sessions, which Gradio used to start with a copy of every component's config."""
from __future__ import annotations

import threading
import weakref

import numpy as np
import pytest
from PIL import Image

from conftest import free_port


def _picture() -> Image.Image:
    return Image.fromarray((np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8))


def test_cached_result_is_never_torn(tmp_path):
    """While one thread keeps saving the same picture, another keeps reading it: always whole."""
    from gradio import processing_utils as pu

    from playground.core import ui  # noqa: F401  (installs the atomic writers)

    assert pu.save_pil_to_cache.atomic and pu.save_bytes_to_cache.atomic
    img = _picture()
    path = pu.save_pil_to_cache(img, str(tmp_path), format="png")
    size = len(pu.encode_pil_to_bytes(img, "png"))
    stop, sizes = threading.Event(), []

    def writer():
        while not stop.is_set():
            assert pu.save_pil_to_cache(img, str(tmp_path), format="png") == path

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(400):
            with open(path, "rb") as f:
                sizes.append(len(f.read()))
    finally:
        stop.set()
        t.join()
    assert set(sizes) == {size}
    assert not [p for p in tmp_path.rglob(".*")]          # no temporary files left behind


@pytest.mark.slow
def test_many_students_download_the_same_result():
    """8 clients x 25 calls of an endpoint that returns one identical picture: 200 whole downloads."""
    import gradio as gr
    from gradio_client import Client

    from playground.core import ui  # noqa: F401

    img = _picture()
    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.Image(format="png")
        box.submit(lambda _: img, box, out, api_name="same")
    port = free_port()
    demo.queue(default_concurrency_limit=8).launch(server_name="127.0.0.1", server_port=port,
                                                   prevent_thread_lock=True, quiet=True)
    errors, ok = [], []

    def student():
        c = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(25):
            try:
                with Image.open(c.predict("x", api_name="/same")) as got:
                    got.load()
                    ok.append(got.size)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                errors.append(repr(e)[:160])

    try:
        threads = [threading.Thread(target=student) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        demo.close()
    assert not errors, errors[:3]
    assert ok == [(512, 512)] * 200


def test_a_session_starts_without_building_every_config_and_gives_the_same_configs_when_read():
    """A new session's `config_values` (read only by Gradio's deep links) is filled when first read in
    full; it then equals what Gradio computes at the session's start, with the session's own changes."""
    import gradio as gr
    from gradio.state_holder import SessionState

    import playground.core.ui  # noqa: F401  (applies the lazy session configs)

    with gr.Blocks() as demo:
        box = gr.Textbox("a", label="box")
        gr.Slider(0, 10, 3, label="s")
        gr.Markdown("hello")
    session = SessionState(demo)
    assert dict.__len__(session.config_values) == 0                       # nothing built at the start
    bc = session.blocks_config
    want = {k: bc.config_for_block(k, [], v) for k, v in bc.blocks.items() if k in demo.blocks}
    session._update_value_in_config(box._id, "typed")                     # a value this session changed
    want[box._id]["props"]["value"] = "typed"
    got = dict(session.config_values.items())
    assert got == want and len(got) == len(demo.blocks) and got[box._id]["props"]["value"] == "typed"
    assert [c for c in session.components] == [c for c in want.values() if c]
    other = SessionState(demo)
    other._update_value_in_config(list(want)[-1], "last")
    assert list(other.config_values) == list(want)                        # in the blocks' order, as Gradio builds it
    assert other.config_values[box._id]["props"]["value"] == "a"           # read by key: filled, as at the start
    with pytest.raises(KeyError):
        other.config_values[10_000]
    gone = weakref.ref(SessionState(demo))
    assert gone() is None                                                  # a closed session is freed at once
