"""App tests through gradio_client against the whole app launched in-process."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

from conftest import ROOT, free_port


def test_page_and_tabs_served(app_url):
    """The page, and in its config one tab per lab with its title, in the order labs.LABS gives."""
    from playground import labs
    from playground.core import settings

    config = json.loads(urllib.request.urlopen(app_url + "config", timeout=10).read())
    assert config["title"] == "GenAI Playground"
    tabs = [c["props"] for c in config["components"] if c.get("type") == "tabitem"
            and str(c["props"].get("elem_id", "")).startswith("tab-")]
    served = settings.from_env().tabs
    assert [(t["elem_id"], t["label"]) for t in tabs] == [(f"tab-{lab.key}", lab.title) for lab in labs.LABS
                                                          if lab.key in served]


def test_echo_round_trip(client):
    assert client.predict("hello", api_name="/echo") == "hello"
    assert client.predict("x" * 1000, api_name="/echo") == "x" * 200   # capped on the server


def test_home_comparison_measured(client):
    """Each family's time per sample is measured by its lab's service: a positive number of ms."""
    from playground.home.service import FAMILIES

    rows = client.predict(api_name="/measure_speeds")["data"]
    assert [r[0] for r in rows] == list(FAMILIES)
    for r in rows:
        m = re.fullmatch(r"([0-9.]+) ms \((.+)\)", r[-1])
        assert m and float(m[1]) > 0, r[-1]


def test_cli_help_lists_settings():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--port", "--host", "--device", "--offline", "--tabs"):
        assert flag in out.stdout


def test_app_serves_from_the_command_line(tmp_path):
    """`python app.py` as a user runs it: serves the page, then stops cleanly."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(tmp_path)}  # a fresh user: no caches
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--offline"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("app did not serve within 90 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_long_jobs_share_one_queue_slot_and_sliders_do_not():
    """The fair queue (core/ui.py LONG): every long job of every lab is in one concurrency group of
    PLAYGROUND_LONG_JOBS (1) slot, so two of them never share the CPU and the sliders keep it; the events
    whose concurrent calls a service merges into one batch keep their own groups (merging needs them
    together), and so do the Prompt lab's side-by-side runs."""
    import app as app_module
    from playground.core import settings, ui

    demo = app_module.build_app(settings.from_env())
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    long_jobs = {"prompt_evaluate", "prompt_json", "prompt_sample", "diffusion_compare",
                 "diffusion_gif", "transformer_lens_gif", "fewshot_gif", "sd_sample", "sd_compare"}
    served = long_jobs & set(fns)
    assert served, sorted(fns)
    for name in served:
        assert (fns[name].concurrency_id, fns[name].concurrency_limit) == ("long-jobs", ui.LONG["concurrency_limit"]), name
    for name in ("vae_decode", "diffusion_step", "diffusion_sample", "gan_single", "clip_search_text"):
        if name in fns:
            assert fns[name].concurrency_id != "long-jobs", name
    # side-by-side runs merge in the LLM's decode loop (engine.Gang): their own group, several at once
    assert (fns["prompt_compare"].concurrency_id, fns["prompt_compare"].concurrency_limit) == ("llm-jobs", 8)


def test_load_script_reseeds_what_the_api_calls_a_seed_and_fetches_every_file(client):
    """demos/load.py: the integer parameters the app's own API listing names a seed are the ones a
    student re-draws (nothing else changes), and every file of an answer is fetched, as a page would."""
    import random

    from demos.common import lab_calls
    from demos.load import Page, reseeded, seed_slots

    calls = lab_calls()
    slots = seed_slots(client, calls)
    assert slots["/echo"] == [] and slots["/diffusion_sample"] == [5] and slots["/gan_conditional"] == [1]
    assert slots["/gan_single"][:2] == [0, 1] and slots["/gan_mix"] == [5]      # not the seed lists (text)
    args = dict((api, a) for _, api, a, _ in calls)["/diffusion_sample"]
    again = reseeded(args, slots["/diffusion_sample"], random.Random(0))
    assert again[:5] == args[:5] and again[5] != args[5]
    page = Page.__new__(Page)
    page.root = "http://h/"
    answer = ([{"image": {"path": "/tmp/a.png", "url": "http://h/gradio_api/file=/tmp/a.png"}, "caption": "x"},
               {"image": {"path": "/tmp/b.png"}}], {"md": "no file"}, "text")
    assert page.files(answer) == ["http://h/gradio_api/file=/tmp/a.png", "http://h/gradio_api/file=/tmp/b.png"]
