"""App tests through gradio_client against the whole app launched in-process."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from conftest import ROOT, free_port


def test_page_and_tabs_served(app_url):
    html = urllib.request.urlopen(app_url, timeout=10).read().decode()
    assert "GenAI Playground" in html


def test_echo_round_trip(client):
    assert client.predict("hello", api_name="/echo") == "hello"
    assert client.predict("x" * 1000, api_name="/echo") == "x" * 200   # capped on the server


def test_home_comparison_measured(client):
    rows = client.predict(api_name="/measure_speeds")["data"]
    fams = [r[0] for r in rows]
    assert fams == ["GAN", "VAE", "Diffusion"]
    for r in rows:
        cell = r[-1]
        assert cell == "lab not built yet" or cell.endswith(")") and "ms" in cell, cell


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
