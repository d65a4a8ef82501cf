"""Unit tests of the frame: settings, hub decision, checkpoint I/O, data sets, validation, metrics math."""
from __future__ import annotations

import inspect
import io
import threading
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from playground.core import cache, checkpoint, data, device, hub, images, settings, timing, validate
from playground.core.errors import InputError, Unavailable
from playground.judge import metrics

from conftest import ROOT


# --- settings ---------------------------------------------------------------------------------

def test_settings_env_and_cli():
    s = settings.from_env({"PLAYGROUND_PORT": "9000", "PLAYGROUND_TABS": "home,vae", "PLAYGROUND_OFFLINE": "1"})
    assert (s.port, s.tabs, s.offline, s.host) == (9000, ("home", "vae"), "yes", "127.0.0.1")
    s = settings.from_args(["--port", "9100", "--tabs", "clip", "--offline"], env={"SPACE_ID": "u/x"})
    assert (s.port, s.tabs, s.offline, s.host) == (9100, ("clip",), "yes", "0.0.0.0")
    assert settings.from_env({"HF_HUB_OFFLINE": "1"}).offline == "yes"
    with pytest.raises(SystemExit):
        settings.from_args(["--tabs", "nope"], env={})
    assert settings.from_env({}).threads == 1                          # one core per request by default
    assert settings.from_env({"PLAYGROUND_THREADS": "0"}).threads == 0
    assert settings.from_args(["--threads", "3"], env={}).threads == 3
    with pytest.raises(ValueError, match="whole number"):
        settings.from_env({"PLAYGROUND_THREADS": "two"})


def test_request_threads_are_per_thread(monkeypatch):
    """The configured torch threads apply to each request's worker thread, whatever ran there before;
    a decode loop asks for every core in its own thread without changing the request threads."""
    monkeypatch.setattr(device, "_per_request", 1)
    seen = {}

    def worker(name, n=None):
        torch.set_num_threads(2)               # what a pooled thread may hold from an earlier job
        device.request_threads(n)
        seen[name] = torch.get_num_threads()

    for name, n in (("request", None), ("decode loop", 2)):
        t = threading.Thread(target=worker, args=(name, n))
        t.start()
        t.join()
    assert seen == {"request": 1, "decode loop": 2}
    monkeypatch.setattr(device, "_per_request", None)    # outside the app: torch's own count, untouched
    worker("outside")
    assert seen["outside"] == 2


def test_device_resolution():
    assert device.resolve("cpu").type == "cpu"
    assert device.resolve("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert device.resolve("cuda").type == "cpu"  # asked for a GPU it does not have: fall back

    @device.gpu(duration=5)
    def f(x):
        return x + 1

    @device.gpu(duration=5)
    def g(n):
        yield from range(n)

    assert f(1) == 2 and list(g(3)) == [0, 1, 2]
    assert inspect.isgeneratorfunction(g)   # Gradio streams only generator functions


def test_hub_offline_decision_is_fast(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    t0 = time.perf_counter()
    online = hub.decide("auto", timeout=1.5)
    assert not online and time.perf_counter() - t0 < 3
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    src = hub.choose("org/model", "assets/x")
    assert src.kind == "bundled" and "not reachable" in src.reason
    assert hub.choose("org/model", "assets/x", local="/models/m").kind == "local"
    hub.decide("yes")


# --- checkpoint I/O ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TinyConfig:
    n_in: int = 3
    n_out: int = 2


class Tiny(torch.nn.Module):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.lin = torch.nn.Linear(config.n_in, config.n_out)


def test_checkpoint_roundtrip(tmp_path, monkeypatch):
    # Classes must live under playground.; register this test class there for the round trip.
    import playground.core.checkpoint as ck
    monkeypatch.setattr(Tiny, "__module__", "playground.core.checkpoint")
    monkeypatch.setattr(ck, "Tiny", Tiny, raising=False)
    m = Tiny(TinyConfig(n_in=4, n_out=3))
    card = checkpoint.save(tmp_path / "tiny", m, data="none", steps=7, seed=1, metrics={"x": 1.0})
    assert card["config"] == {"n_in": 4, "n_out": 3} and len(card["sha256"]) == 64
    m2, card2 = checkpoint.load(tmp_path / "tiny")
    assert torch.equal(m2.lin.weight, m.lin.weight) and card2["steps"] == 7
    # A tampered file is refused.
    w = (tmp_path / "tiny.safetensors").read_bytes()
    (tmp_path / "tiny.safetensors").write_bytes(w[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(tmp_path / "tiny")


def test_checkpoint_refuses_classes_outside_playground(tmp_path):
    card = {"model": "os:system", "config": {}}
    (tmp_path / "evil.json").write_text(json.dumps(card))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.build(card)


# --- data ------------------------------------------------------------------------------------

def test_fashion_and_digits_shapes():
    tr, te = data.load("fashion", "train"), data.load("fashion", "test")
    assert tr.images.shape == (60000, 28, 28) and te.images.shape == (10000, 28, 28)
    assert tr.labels.bincount().tolist() == [6000] * 10
    d_tr, d_te = data.load("digits", "train"), data.load("digits", "test")
    assert len(d_tr) == 4500 and len(d_te) == 500 and d_te.labels.bincount().tolist() == [50] * 10
    # MNIST-style: the border is empty, the digit is in the middle.
    assert d_tr.images[:, :4].max() == 0 and d_tr.images[:, 10:18, 10:18].float().mean() > 20


def test_missing_dataset_names_package(monkeypatch):
    monkeypatch.setattr(data, "FASHION_DIRS", ["/nonexistent"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(data, "_first", lambda paths: None)
    with pytest.raises(data.DatasetMissing, match="dataset-fashion-mnist"):
        data.fashion("train", cache=__import__("pathlib").Path("/nonexistent-cache"))
    with pytest.raises(data.DatasetMissing, match="opencv-doc"):
        data.digits()


def test_emoji_names(tmp_path):
    e = data.emoji(size=32, cache=tmp_path)
    assert len(e) > 1200 and e.images.shape[1:] == (32, 32, 4)
    assert "grinning face" in e.classes
    i = e.classes.index("grinning face")
    assert e.images[i, :, :, 3].float().mean() > 50   # drawn, not blank


def test_synthetic_is_deterministic():
    a, b = data.synthetic(50, seed=3), data.synthetic(50, seed=3)
    assert torch.equal(a.images, b.images) and a.images.float().mean() > 5


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", None, True, [1]])
def test_number_refuses(bad):
    with pytest.raises(InputError):
        validate.number("x", bad, 0, 1)


def test_number_clamps():
    assert validate.number("x", 5, 0, 1) == 1 and validate.number("x", -3, 0, 1) == 0
    assert validate.integer("n", 7.6, 0, 10) == 8 and validate.seed(2**40) == 2**31 - 1
    assert validate.seed(-1) == 0 and validate.number("x", "0.25", 0, 1) == 0.25
    with pytest.raises(InputError, match="Guidance"):   # the message names the field
        validate.number("Guidance", "lots", 0, 10)
    with pytest.raises(InputError, match="Noise"):
        validate.flag("Noise", "yes")
    assert validate.choices("Layers", ["b", "a"], ["a", "b", "c"]) == ["a", "b"]
    with pytest.raises(InputError, match="one of"):
        validate.choice("Class", ["x"], ("a", "b"))      # unhashable against a tuple
    assert validate.numbers("z", [0.5, 9], -3, 3, count=2) == [0.5, 3]
    with pytest.raises(InputError):
        validate.numbers("z", [0.5], -3, 3, count=2)


def test_text_limits():
    assert validate.text("p", "hi") == "hi"
    with pytest.raises(InputError, match="shorten"):
        validate.text("p", "x" * 5000, max_chars=4000)
    with pytest.raises(InputError, match="empty"):
        validate.text("p", "   ")
    assert validate.text("p", "a\x00b\x1b[31mc\nd\te") == "ab[31mc\nd\te"   # control characters removed
    with pytest.raises(InputError, match="p must be text"):
        validate.text("p", 42)


def _png(w, h, mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, "PNG")
    return buf.getvalue()


def test_image_validation(tmp_path):
    ok = validate.image(_png(10, 8), mode="L")
    assert ok.size == (10, 8) and ok.mode == "L"
    with pytest.raises(InputError, match="not an image"):
        validate.image(b"hello, I am text")
    with pytest.raises(InputError, match="megapixels"):
        validate.image(_png(7100, 7100, "1"))   # 50 megapixels, tiny file
    with pytest.raises(InputError, match="upload"):
        validate.image(None)
    with pytest.raises(InputError, match="not found"):
        validate.image(str(tmp_path / "missing.png"))
    # EXIF orientation 6 (rotate 90 clockwise) is applied.
    img = Image.new("RGB", (20, 10), 0)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert validate.image(buf.getvalue()).size == (10, 20)
    # Transparent pixels become white paper in grey mode.
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert validate.image(rgba, mode="L").getpixel((0, 0)) == 255


def test_images_helpers(tmp_path):
    x = torch.rand(5, 1, 8, 8)
    g = images.grid(x, nrow=3, pad=1)
    assert g.shape == (1, 2 * 9 + 1, 3 * 9 + 1)
    assert torch.equal(g[:, 1:9, 10:18], x[1]) and g[0, 0, 0] == 1.0   # cell (0, 1), padding of pad_value
    assert images.grid(x * 2 - 1, nrow=3, pad=1, lo=-1, hi=1).sub(g).abs().max() < 1e-6
    assert images.to_pil(x[0], scale=4).size == (32, 32)
    frames = [images.to_pil(x[i]).convert("RGB") for i in range(5)]
    gif = Image.open(images.save_gif(frames, path=tmp_path / "a.gif"))
    assert gif.n_frames == 5
    for i in (0, 3):                             # grey frames come back exactly, every pixel
        gif.seek(i)
        assert np.array_equal(np.asarray(gif.convert("RGB")), np.asarray(frames[i]))
    colour = [Image.new("RGB", (4, 4), (200, 30, 60)), Image.new("RGB", (4, 4), (10, 120, 250))]
    back = Image.open(images.save_gif(colour, path=tmp_path / "b.gif"))
    back.seek(1)
    assert back.convert("RGB").getpixel((0, 0)) == (10, 120, 250)


# --- metrics math ----------------------------------------------------------------------------

def test_frechet_distance_closed_form():
    # Diagonal Gaussians: FD = |mu1-mu2|^2 + sum (s1 - s2)^2 with s the standard deviations.
    mu1, mu2 = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    s1, s2 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.5])
    fd = metrics.frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert fd == pytest.approx(float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()), rel=1e-9)
    # Non-diagonal but commuting: rotate both by the same orthogonal matrix; FD is unchanged.
    q, _ = torch.linalg.qr(torch.randn(2, 2, dtype=torch.float64))
    a, b = q @ torch.diag(s1.double() ** 2) @ q.T, q @ torch.diag(s2.double() ** 2) @ q.T
    assert metrics.frechet_distance(q @ mu1.double(), a, q @ mu2.double(), b) == pytest.approx(fd, rel=1e-9)
    # Samples from one Gaussian: FD near 0.
    f = torch.randn(20000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert metrics.fd(f[:10000], f[10000:]) < 0.01


def test_diversity_and_entropy():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert metrics.diversity(f) == pytest.approx(5.0)
    assert metrics.class_entropy_bits(torch.arange(10)) == pytest.approx(math.log2(10))
    assert metrics.class_entropy_bits(torch.zeros(10, dtype=torch.long)) == 0


# --- load-once cache, timing, the UI adapter --------------------------------------------------

def test_what_loads_once_leaves_the_collectors_view(monkeypatch):
    """In the server, cache.once freezes what is alive after a load (a full collection no longer walks a
    model's objects), and a frozen object is still freed when nothing refers to it."""
    import gc
    import weakref

    class Model:
        pass

    cache.clear("t-settle")
    monkeypatch.setattr(cache, "SETTLE", True)
    made = cache.once(("t-settle", 1), Model)
    assert gc.get_freeze_count() > 0
    assert not any(o is made for o in gc.get_objects())    # in the permanent generation: never walked
    gone = weakref.ref(made)
    del made
    cache.clear("t-settle")
    assert gone() is None                         # refcounting still frees it


def test_cache_once_per_key_and_threads():
    cache.clear("t-once")
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return object()

    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.once(("t-once", 1), slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(o is out[0] for o in out)
    assert cache.peek(("t-once", 2)) is None

    def broken():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.once(("t-once", 3), broken)
    assert cache.once(("t-once", 3), lambda: 7) == 7     # a failed factory leaves nothing behind
    cache.clear("t-once")
    assert cache.peek(("t-once", 1)) is None


def test_timing_median_is_positive():
    assert 0 < timing.median_seconds(lambda: sum(range(1000)), min_run_time=0.01) < 0.1


def test_ui_handler_errors_generators_progress():
    import gradio as gr

    from playground.core import ui

    def plain(a, b=2):
        if a < 0:
            raise InputError("A must be positive.")
        if a == 0:
            raise Unavailable("Install the thing.")
        return a + b

    h = ui.handler(plain, render=lambda v: v * 10)
    assert h(1) == 30 and list(inspect.signature(h).parameters) == ["a", "b"]
    for bad, msg in ((-1, "A must be positive."), (0, "Install the thing.")):
        with pytest.raises(gr.Error) as e:
            h(bad)
        assert e.value.message == msg

    def gen(n):
        yield from range(n)
        raise InputError("stop")

    hg = ui.handler(gen, render=str)
    assert inspect.isgeneratorfunction(hg)
    it = hg(2)
    assert [next(it), next(it)] == ["0", "1"]
    with pytest.raises(gr.Error):
        next(it)

    seen = []

    def with_progress(x, progress=None):
        progress(0.5, "half")
        seen.append(x)
        return x

    hp = ui.handler(with_progress)
    assert isinstance(inspect.signature(hp).parameters["progress"].default, gr.Progress)
    assert hp(3) == 3 and seen == [3]   # outside an event the tracker is a no-op


def test_no_gradio_outside_tabs_and_ui():
    """Only tab.py files and core/ui.py import gradio: services, views and models run headless."""
    import ast

    root = ROOT / "playground"
    offenders = []
    for f in root.rglob("*.py"):
        if f.name == "tab.py" or f == root / "core" / "ui.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "gradio" or n.startswith("gradio.") for n in names):
                offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_every_lab_has_the_same_shape():
    """Every lab folder: service.py, views.py, a tab.py of layout and wiring (at most 200 lines; the Prompt
    lab's, seven techniques in four views, 205; a sub-tab with its own wiring goes in a tab.py of its own),
    and its model side in modules of its own (none for Home, which has no model)."""
    from playground import labs

    most = {"prompt": 205}

    for lab in labs.LABS:
        folder = ROOT / "playground" / lab.package.split(".")[-1]
        for part in ("service.py", "views.py", "tab.py"):
            assert (folder / part).exists(), f"{lab.key}: missing {part}"
        cap = most.get(lab.key, 200)
        assert len((folder / "tab.py").read_text().splitlines()) <= cap, f"{lab.key}: tab.py over {cap} lines"
        model_side = [p.name for p in folder.glob("*.py") if p.name not in ("service.py", "views.py", "tab.py",
                                                                              "__init__.py")]
        assert (lab.key == "home") == (not model_side), (lab.key, model_side)



def test_batcher_merges_concurrent_calls_and_keeps_each_result():
    from playground.core.batch import Batcher

    seen = []

    def double(items):
        seen.append(len(items))
        time.sleep(0.02)
        return [2 * i for i in items]

    b = Batcher(double, max_size=8, max_wait=0.05, name="double")
    out = {}
    threads = [threading.Thread(target=lambda k=k: out.__setitem__(k, b(k))) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: 2 * k for k in range(12)}
    assert sum(seen) == 12 and max(seen) == 8 and len(seen) < 12      # merged, never above max_size
    assert b(5) == 10 and seen[-1] == 1                                 # alone: a batch of one

    def broken(items):
        raise ValueError("model failed")

    with pytest.raises(ValueError, match="model failed"):
        Batcher(broken)(1)
    with pytest.raises(RuntimeError, match="2 results"):
        Batcher(lambda items: [1, 2])(1)


def test_batcher_shares_equal_items_once():
    """share=N: equal items asked together run once; a recent item is answered without running; at most
    N results are kept, oldest out first."""
    from playground.core.batch import Batcher

    ran = []

    def square(items):
        ran.extend(items)
        time.sleep(0.05)
        return [i * i for i in items]

    b = Batcher(square, max_wait=0.1, share=2, name="square")
    out = []
    threads = [threading.Thread(target=lambda k=k: out.append(b(k % 2))) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == [0, 0, 0, 1, 1, 1] and sorted(ran) == [0, 1] and b.shared == 4
    assert b(1) == 1 and len(ran) == 2                                    # kept: not run again
    assert b(2) == 4 and b(3) == 9 and ran[-2:] == [2, 3]
    assert b(0) == 0 and ran[-1] == 0                                     # pushed out by 2 and 3: run again
    assert b.shared == 5


def test_a_long_job_yields_the_cpu_and_gets_it_back():
    """core.fair: a job running past LONG is lowered (nice +NICE) in its own thread only, a short job is
    not, and each thread's priority is restored when its job ends; ui.handler and Batcher use it."""
    import os

    from playground.core import fair, ui
    from playground.core.batch import Batcher

    assert fair.ENABLED, "Linux lets this process lower and restore a thread's priority"
    me = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # noqa: E731
    base = me()

    def spin(seconds):
        t = time.monotonic()
        while time.monotonic() - t < seconds:
            pass
        time.sleep(3 * fair.TICK)              # the watchdog's next look
        return me()

    with fair.job():
        assert spin(0.0) == base                # short so far
        assert spin(fair.LONG + 0.05) == min(19, base + fair.NICE)
        with fair.job():                        # nested: part of the same job
            assert me() == min(19, base + fair.NICE)
    assert me() == base
    assert ui.handler(lambda: spin(fair.LONG + 0.05))() == min(19, base + fair.NICE)
    assert me() == base

    def stream():
        yield spin(0.0)
        yield spin(fair.LONG + 0.05)            # each step is a job of its own
    assert list(ui.handler(stream)()) == [base, min(19, base + fair.NICE)]
    batched = Batcher(lambda items: [spin(s) for s in items], name="spin")
    assert batched(0.0) == base and batched(fair.LONG + 0.05) == min(19, base + fair.NICE)
    assert batched(0.0) == base                 # the worker thread got its priority back
    got = {}                                    # a long batch with a caller waiting behind it keeps its priority
    first = threading.Thread(target=lambda: got.__setitem__("long", batched(fair.LONG + 0.3)))
    first.start()
    time.sleep(0.05)
    got["short"] = batched(0.0)
    first.join()
    assert got == {"long": base, "short": base}


def test_one_tls_context_for_every_loopback_client():
    """demos.common.share_tls_context: gradio_client's per-request httpx clients share one TLS context."""
    import httpx

    from demos.common import share_tls_context

    share_tls_context()
    a, b = httpx.Client(), httpx.Client()
    assert a._transport._pool._ssl_context is b._transport._pool._ssl_context
    assert httpx.Client(verify=False)._transport._pool._ssl_context is not a._transport._pool._ssl_context


def test_zerogpu_stand_in(monkeypatch):
    """With the spaces stand-in: ZeroGPU is detected, bundled models stay on the CPU, a GPU function
    keeps being a generator, and a spent quota is recognised as a GPU failure (for the fallbacks)."""
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "stand_in"))
    for name in ("spaces", "spaces.config"):
        sys.modules.pop(name, None)
    import spaces

    try:
        assert device.has_spaces() and device.zerogpu() and device.for_bundled().type == "cpu"

        @device.gpu(duration=7)
        def stream(n):
            yield from range(n)

        assert inspect.isgeneratorfunction(stream) and list(stream(2)) == [0, 1]
        assert spaces.CALLS[-1] == {"fn": "stream", "duration": 7}
        monkeypatch.setitem(spaces.QUOTA, "left", 0)
        with pytest.raises(RuntimeError) as e:
            list(stream(1))
        assert device.gpu_failure(e.value) and not device.gpu_failure(ValueError("bad prompt"))
        worker = RuntimeError("OutOfMemoryError")
        worker.title = "ZeroGPU worker error"                 # how the package re-raises a worker's failure
        assert device.gpu_failure(worker)
        bad_input = RuntimeError("InputError")
        bad_input.title = "ZeroGPU worker error"              # the same title for a worker's bad input: not a GPU failure
        assert not device.gpu_failure(bad_input)
    finally:
        for name in ("spaces", "spaces.config"):
            sys.modules.pop(name, None)


def test_launch_tries_again_when_gradios_localhost_check_fails():
    """ui.launch: Gradio's start-up check of its own URL can miss its 3 s on a busy machine; the launch is
    tried again (after closing the half-started server), and any other error is raised at once."""
    from playground.core import ui

    class Demo:
        def __init__(self, errors):
            self.errors, self.launched, self.closed = list(errors), 0, 0

        def launch(self, **kw):
            self.launched += 1
            if self.errors:
                raise self.errors.pop(0)
            return kw

        def close(self):
            self.closed += 1

    busy = ValueError("When localhost is not accessible, a shareable link must be created.")
    d = Demo([busy])
    assert ui.launch(d, server_port=7) == {"server_port": 7} and (d.launched, d.closed) == (2, 1)
    d = Demo([busy] * 3)
    with pytest.raises(ValueError, match="localhost"):
        ui.launch(d)
    assert d.launched == 3
    d = Demo([ValueError("port in use")])
    with pytest.raises(ValueError, match="port in use"):
        ui.launch(d)
    assert d.launched == 1


def test_unchecked_figures_are_checked_in_tests():
    """core.plots: a figure from dicts skips plotly's checks; `checked` runs them (and so can fail)."""
    from playground.core import plots

    layout = {"xaxis": {}, "xaxis2": {}, "yaxis": {}, "xaxisx": {}}
    plots.each_axis(layout, "xaxis", range=[0, 1])
    assert layout == {"xaxis": {"range": [0, 1]}, "xaxis2": {"range": [0, 1]}, "yaxis": {}, "xaxisx": {}}
    good = plots.figure([{"type": "scatter", "x": [1, 2], "y": [3, 4], "name": "a"}], {"title": {"text": "t"}})
    assert plots.valid(good) and good.data[0].name == "a"
    named = plots.figure([{"type": "heatmap", "z": [[1]], "colorscale": "Blues"}], {})
    assert not plots.valid(named)                                       # plotly's checks expand a scale's name
    assert plots.valid(plots.figure([{"type": "heatmap", "z": [[1]], "colorscale": plots.colorscale("Blues")}], {}))
    for bad in ({"type": "scatter", "colour": "red"}, {"type": "scatter", "mode": "dots"}):
        with pytest.raises(ValueError):
            plots.checked(plots.figure([bad], {}))
    layout = plots.panels(1, 2, subplot_titles=["a", "b"])         # make_subplots' layout, a fresh copy each time
    layout["xaxis"]["title"] = "changed"
    assert "title" not in plots.panels(1, 2, subplot_titles=["a", "b"])["xaxis"]
    two = plots.figure([plots.on({"type": "bar", "y": [1]}, 1), plots.on({"type": "bar", "y": [2]}, 2)], layout)
    assert [(t.xaxis, t.yaxis) for t in two.data] == [("x", "y"), ("x2", "y2")] and len(two.layout.annotations) == 2
