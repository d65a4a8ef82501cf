"""Home tab: the map of generative model families, the GAN / VAE / diffusion comparison with a
speed column measured live on this machine, and this machine's facts (device, hub, round trip)."""
from __future__ import annotations

import gradio as gr

from playground import labs
from playground.core import device, hub

FAMILY_MAP = """
<div class="family-map" style="font-family: sans-serif; line-height: 1.5">
<p><b>Every generative model learns p(x)</b> (or p(x | y) for a label or a prompt y) from examples,
then draws new x from it. The families differ in whether they can tell you how likely an x is.</p>
<table style="width:100%; border-collapse: collapse; text-align: left">
<tr><th style="width:50%; padding:8px; background:#e8f1ff">Explicit density: a formula for p(x)</th>
    <th style="padding:8px; background:#eafbea">Implicit density: only a way to sample</th></tr>
<tr>
<td style="vertical-align:top; padding:8px">
  <b>Exact (tractable)</b>
  <ul><li><b>Autoregressive</b>: p(x) = &prod;<sub>i</sub> p(x<sub>i</sub> | x<sub>&lt;i</sub>), one token at a time.
      PixelCNN, WaveNet, GPT-style LLMs. <i>Tab: Prompt lab.</i></li></ul>
  <b>Approximate: a lower bound (ELBO) on log p(x)</b>
  <ul><li><b>VAE</b>: an encoder q(z | x) and a decoder p(x | z) trained together; one network pass to sample.
      <i>Tab: VAE.</i></li>
      <li><b>Diffusion</b>: a fixed noising chain and a learned denoiser; the ELBO becomes a noise-prediction
      loss; sampling runs the chain backwards in many steps. <i>Tab: Diffusion.</i></li></ul>
</td>
<td style="vertical-align:top; padding:8px">
  <b>Direct sampling</b>
  <ul><li><b>GAN</b>: a generator G(z) trained against a discriminator D(x) in a two-player game; no likelihood,
      one network pass to sample. StyleGAN adds a mapping network and per-layer styles. <i>Tab: GAN.</i></li></ul>
  <b>Not a generator, but the glue of text-to-image</b>
  <ul><li><b>CLIP</b>: a contrastive model that puts images and captions in one space; it scores, guides and
      retrieves. <i>Tab: CLIP.</i></li></ul>
</td></tr></table></div>
"""

# Qualitative columns (what the literature and the labs show); the last column is measured here.
COMPARISON = {
    "GAN": ("sharp", "can collapse to a few modes", "unstable: a two-player game", "none",
            "w: disentangled by the mapping network", "1 network pass"),
    "VAE": ("blurry (averages over what it is unsure of)", "covers the data", "stable: one loss (the ELBO)",
            "lower bound (ELBO)", "z: smooth, organised by the KL term", "1 decoder pass"),
    "Diffusion": ("sharpest of the three", "covers the data", "stable: a regression loss",
                  "lower bound (ELBO)", "x_T: same size as the image", "10 to 1000 U-Net passes"),
}
HEADERS = ["family", "sample quality", "diversity", "training", "likelihood", "latent space",
           "cost of one sample", "measured here: time per sample"]
PROBE_OF = {"GAN": "gan", "VAE": "vae", "Diffusion": "diffusion"}


def comparison_rows(measured: dict[str, str] | None = None) -> list[list[str]]:
    measured = measured or {}
    rows = []
    for fam, cols in COMPARISON.items():
        rows.append([fam, *cols, measured.get(fam, "press Measure")])
    return rows


def measure_speeds(progress=gr.Progress()) -> list[list[str]]:
    """Run each built lab's speed probe on this machine (its model loads on first use)."""
    measured = {}
    for fam, key in progress.tqdm(list(PROBE_OF.items()), desc="sampling from each model"):
        mod = labs.module(labs.by_key(key))
        probe = getattr(mod, "speed_probe", None) if mod else None
        if probe is None:
            measured[fam] = "lab not built yet"
            continue
        try:
            r = probe()
            measured[fam] = f"{r['seconds'] * 1000:.1f} ms ({r['what']})"
        except Exception as e:  # noqa: BLE001 - one lab failing must not hide the others
            measured[fam] = f"failed: {type(e).__name__}"
    return comparison_rows(measured)


def echo(text: str) -> str:
    """The round-trip floor: the cheapest possible Gradio call. The benchmark times it."""
    return str(text)[:200] if text is not None else ""


def machine_facts() -> str:
    import torch

    return "\n".join([
        f"- **Device**: {device.describe()}",
        f"- **Hub**: {'online' if hub.online() else 'offline'} — {hub.why()}",
        f"- **PyTorch** {torch.__version__}, **Gradio** {gr.__version__}",
        f"- **ZeroGPU**: {'spaces package present: GPU work runs under spaces.GPU' if device.has_spaces() else 'not on a ZeroGPU Space'}",
    ])


def build(settings=None) -> None:
    gr.Markdown("## The families of generative models")
    gr.HTML(FAMILY_MAP)
    gr.Markdown("## GAN, VAE and diffusion compared\nThe last column is measured on the machine running this "
                "app, by each lab's own model: press **Measure**.")
    table = gr.Dataframe(value=comparison_rows(), headers=HEADERS, interactive=False, wrap=True,
                         elem_id="home-comparison")
    gr.Button("Measure on this machine", elem_id="home-measure").click(
        measure_speeds, None, table, api_name="measure_speeds")
    with gr.Accordion("This machine", open=False, elem_id="home-machine"):
        gr.Markdown(machine_facts())
        with gr.Row():
            ping_in = gr.Textbox(value="ping", label="Send", max_lines=1, elem_id="echo-in")
            ping_out = gr.Textbox(label="Echoed back", interactive=False, elem_id="echo-out")
        rtt = gr.Markdown()
        t0 = gr.State(0.0)
        # Time the round trip in the browser: stamp, call, then read the clock in JS.
        ping_in.submit(None, None, t0, js="() => performance.now()").then(
            echo, ping_in, ping_out, api_name="echo").then(
            None, t0, rtt, js="(t) => `Round trip: ${(performance.now() - t).toFixed(1)} ms`")


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "Home")
