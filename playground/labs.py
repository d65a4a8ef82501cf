"""The tabs of the app, in order. A lab is a folder `playground/<key>/` whose `tab.py` has:

    build(settings) -> None      builds the tab's components (called inside `with gr.Tab(...)`)
    speed_probe() -> dict        optional: {"family", "what", "seconds"} for Home's comparison table
    load_calls() -> list         optional: [(api_name, args), ...] the load script sends

`module` stays None until the lab exists; its tab then says plainly what it will hold.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    key: str
    title: str
    module: str | None   # "playground.vae.tab" once built
    plan: str            # what the tab holds (shown while it is not built yet)


LABS: tuple[Lab, ...] = (
    Lab("home", "Home", "playground.home.tab",
        "The map of generative model families and how they compare."),
    Lab("vae", "VAE", "playground.vae.tab",
        "Latent sliders on a convolutional VAE trained here on Fashion-MNIST and handwritten digits: "
        "encode an image, see mu, sigma and the reparameterised samples, walk between two codes, "
        "the latent map coloured by class, and beta = 1 against beta > 1, with the ELBO beside the controls."),
    Lab("gan", "GAN", "playground.gan.tab",
        "Style mixing on a small StyleGAN-like generator trained here: rows of source seeds, columns of "
        "style seeds, coarse / middle / fine layers, truncation psi with w_avg, and the training curves."),
    Lab("diffusion", "Diffusion", "playground.diffusion.tab",
        "The reverse chain of a class-conditional U-Net, step by step: x_t, predicted x_0 and noise at each "
        "step, DDPM and DDIM, and the classifier-free guidance scale with its accuracy / diversity trade-off."),
    Lab("prompt", "Prompt lab", "playground.prompting.tab",
        "Zero-shot, few-shot, chain-of-thought and self-consistency side by side on a real instruct LLM "
        "(offline: SmolLM2-135M-Instruct), with the exact prompt, every completion, votes and accuracy."),
    Lab("clip", "CLIP", "playground.clip.tab",
        "Text-to-image and image-to-image search, zero-shot classification with prompt templates, and the "
        "text x image similarity matrix with its contrastive loss, on open_clip or a small CLIP trained here."),
)


def by_key(key: str) -> Lab:
    for lab in LABS:
        if lab.key == key:
            return lab
    raise KeyError(key)


def module(lab: Lab):
    """The lab's tab module, or None while it is not built."""
    return importlib.import_module(lab.module) if lab.module else None
