"""VAE lab benchmark: latent slider -> new image on screen, in a real browser, against Gradio's own
echo round trip measured in the same run, against the same server.

    python -m demos.bench_vae                 # 40 slider steps, 40 echoes, interleaved in blocks of 5
    python -m demos.bench_vae --repeat 100

The app (Home + VAE tabs) is launched in this process; Playwright drives Debian's Chromium.
- slider: the mouse moves the thumb of the first latent slider to a new place on its track (a real
  drag step, which fires the slider's `input` event). Timed in the page from that event's timeStamp
  to the moment the decoded <img> has a new src that has finished loading.
- echo: Enter in the Home tab's echo box (#echo-in). Timed in the page from the keydown event's
  timeStamp to the moment #echo-out shows the text sent.
Both waits use the same in-page poll (a setTimeout chain, a few ms of granularity), so the two
figures carry the same measurement overhead. Note what each path is: the echo goes through the
queue (join, then the answer over server-sent events) after a browser-side step that stamps the
time, as the Home tab wires it; the VAE slider's decode skips the queue (queue=False: a 2 ms CPU
call), so it can come out faster than the echo. Also printed: the server-side work alone (validate,
decode, PNG) called directly, and one decoder pass.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from demos.common import free_port, summary, table  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# In-page helpers: record an event's timeStamp, then poll until a condition holds.
JS_SETUP = """
() => {
  window.__bench = {t0: null, t1: null};
  const rec = (e) => { window.__bench.t0 = e.timeStamp; };
  document.querySelector('#vae-z0 input[type=range]').addEventListener('input', rec, true);
  document.querySelector('#echo-in textarea, #echo-in input').addEventListener('keydown', rec, true);
  window.__poll = (check) => {
    window.__bench.t1 = null;
    const step = () => { if (check()) { window.__bench.t1 = performance.now(); } else { setTimeout(step, 0); } };
    setTimeout(step, 0);
  };
}
"""
JS_WATCH_IMG = """
() => {
  const cur = document.querySelector('#vae-decoded img');
  const old = cur ? cur.src : '';
  window.__bench.t0 = null;
  window.__poll(() => {
    const img = document.querySelector('#vae-decoded img');
    return img && img.src !== old && img.complete && img.naturalWidth > 0;
  });
}
"""
JS_WATCH_ECHO = """
(text) => {
  window.__bench.t0 = null;
  window.__poll(() => {
    const el = document.querySelector('#echo-out textarea, #echo-out input');
    return el && el.value === text;
  });
}
"""
JS_RESULT = "() => (window.__bench.t1 !== null && window.__bench.t0 !== null) ? window.__bench.t1 - window.__bench.t0 : null"


def wait_result(page, timeout_s: float = 20.0) -> float:
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        r = page.evaluate(JS_RESULT)
        if r is not None:
            return float(r)
        page.wait_for_timeout(5)
    raise TimeoutError("no update seen in the page")


def serve(tabs: str):
    import app as app_module
    from playground.core import hub, settings, ui

    hub.decide("yes")
    cfg = settings.from_env({"PLAYGROUND_TABS": tabs, "HF_HUB_OFFLINE": "1"})
    demo = app_module.build_app(cfg)
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                share=False, **ui.LAUNCH, max_file_size="10mb")
    return demo, f"http://127.0.0.1:{port}/"


def measure(url: str, repeat: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    slider_ms, echo_ms = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_role("tab", name="VAE", exact=True).first.click()
        page.wait_for_selector("#vae-z0 input[type=range]")
        page.get_by_role("tab", name="Home", exact=True).first.click()
        page.locator("#home-machine").get_by_text("This machine").first.click()  # open the accordion
        page.wait_for_selector("#echo-in textarea, #echo-in input", state="visible")
        page.evaluate(JS_SETUP)

        # Interleaved in blocks (5 echoes, then 5 slider steps, then switch back), so that the load
        # of a shared machine weighs on both figures alike.
        box = page.locator("#echo-in textarea, #echo-in input").first
        track = page.locator("#vae-z0 input[type=range]").first
        total = repeat + 5
        k = 0                                                   # slider position index
        for block in range(0, total, 5):
            page.get_by_role("tab", name="Home", exact=True).first.click()
            box.wait_for(state="visible")
            for i in range(block, min(block + 5, total)):
                text = f"ping {i}"
                box.fill(text)
                page.evaluate(JS_WATCH_ECHO, text)
                box.press("Enter")
                ms = wait_result(page)
                if i >= 5:
                    echo_ms.append(ms)
            page.get_by_role("tab", name="VAE", exact=True).first.click()
            track.wait_for(state="visible")
            track.scroll_into_view_if_needed()
            bb = track.bounding_box()
            y = bb["y"] + bb["height"] / 2
            # press the thumb where the last block left it, then drag one step per sample
            page.mouse.move(bb["x"] + bb["width"] * (0.1 + 0.8 * k / total), y)
            page.mouse.down()
            page.wait_for_timeout(400)                          # let the press's own image land
            for i in range(block, min(block + 5, total)):
                k += 1
                page.evaluate(JS_WATCH_IMG)
                page.mouse.move(bb["x"] + bb["width"] * (0.1 + 0.8 * k / total), y)
                ms = wait_result(page)
                if i >= 5:
                    slider_ms.append(ms)
            page.mouse.up()
        browser.close()
    return slider_ms, echo_ms


def server_side(n: int = 100) -> tuple[list[float], list[float]]:
    """The decode action alone (validation, decoder, data URL) and one decoder pass, in ms."""
    import torch

    from playground.core import settings
    from playground.vae import service, views

    svc = service.Service(settings.from_env())
    m = svc.loaded(service.DEFAULT, "main")
    z = torch.zeros(1, m.dim)
    handler, dec = [], []
    for i in range(n + 5):
        vals = [((i * 7 + k) % 50) / 10 - 2.5 for k in range(svc.n_sliders)]
        t0 = time.perf_counter()
        views.data_url(svc.decode_sliders(svc.default, *vals))
        t1 = time.perf_counter()
        with torch.inference_mode():
            m.model.decode(z)
        t2 = time.perf_counter()
        if i >= 5:
            handler.append((t1 - t0) * 1000)
            dec.append((t2 - t1) * 1000)
    return handler, dec


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=40, help="timed samples of each (after 5 warm-up)")
    p.add_argument("--tabs", default="home,vae", help="tabs to build (echo lives on Home)")
    a = p.parse_args(argv)
    demo, url = serve(a.tabs)
    try:
        slider_ms, echo_ms = measure(url, a.repeat)
    finally:
        demo.close()
    handler_ms, dec_ms = server_side()
    s, e, h, d = summary(slider_ms), summary(echo_ms), summary(handler_ms), summary(dec_ms)
    rows = [["echo: Enter -> text back (Home, api echo)", e["n"], e["p50"], e["p95"], 1.0],
            ["VAE slider: mouse drag step -> new image loaded", s["n"], s["p50"], s["p95"], s["p50"] / e["p50"]],
            ["  server side: decode handler alone", h["n"], h["p50"], h["p95"], h["p50"] / e["p50"]],
            ["  one decoder pass (1 x D -> H x W)", d["n"], d["p50"], d["p95"], d["p50"] / e["p50"]]]
    print(f"## VAE slider latency in Chromium ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")
    print(table(["round trip", "n", "p50 ms", "p95 ms", "x echo p50"], rows))
    verdict = {"slider_p50_ms": round(s["p50"], 1), "echo_p50_ms": round(e["p50"], 1),
               "ratio": round(s["p50"] / e["p50"], 2), "target": "p50 <= 100 ms and ratio <= 1.3"}
    print(f"\n{verdict}")
    return verdict


if __name__ == "__main__":
    main()
