"""Home's pictures and tables: the map of model families, the GAN / VAE / diffusion comparison (its last
column filled from the labs' live measurements) and this machine's facts."""
from __future__ import annotations

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


def comparison_rows(measured: dict[str, dict] | None = None) -> list[list[str]]:
    """The table; `measured` is Service.measure_speeds()'s answer (absent: ask for a measurement)."""
    rows = []
    for fam, cols in COMPARISON.items():
        m = (measured or {}).get(fam)
        if m is None:
            cell = "press Measure"
        elif "error" in m:
            cell = f"failed: {m['error']}"
        else:
            cell = f"{m['seconds'] * 1000:.1f} ms ({m['what']})"
        rows.append([fam, *cols, cell])
    return rows


def machine_markdown(f: dict) -> str:
    return "\n".join([
        f"- **Device**: {f['device']}",
        f"- **Hub**: {'online' if f['online'] else 'offline'} — {f['hub_why']}",
        f"- **PyTorch** {f['torch']}, **Gradio** {f['gradio']}",
        f"- **ZeroGPU**: {'spaces package present: GPU work runs under spaces.GPU' if f['zerogpu'] else 'not on a ZeroGPU Space'}",
    ])
