"""The labs of the app, in order. A lab is a folder `playground/<key>/` of the same four parts:

    model.py (or a few model files)   pure torch: the network and its math
    service.py   class Service(settings): every user action, validated, returning plain data; no gradio.
                 Optional methods: speed_probe() -> {"family", "what", "seconds"} (Home's table) and
                 load_calls() -> [(api_name, args[, weight]), ...] (the load script and benchmarks;
                 weight: how often a class does it, default 1)
    views.py     plotly figures and markdown tables from the service's plain data
    tab.py       build(service): layout and event wiring only

`service(lab, settings)` makes a lab's service; `tab(lab)` imports its tab module.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    key: str            # its name in --tabs / PLAYGROUND_TABS
    title: str          # the tab's label
    package: str        # "playground.vae"


LABS: tuple[Lab, ...] = (
    Lab("home", "Home", "playground.home"),
    Lab("vae", "VAE", "playground.vae"),
    Lab("gan", "GAN", "playground.gan"),
    Lab("diffusion", "Diffusion", "playground.diffusion"),
    Lab("prompt", "Prompt lab", "playground.prompting"),
    Lab("transformer", "Transformer", "playground.transformer"),
    Lab("clip", "CLIP", "playground.clip"),
    Lab("fewshot", "Few-shot (MAML)", "playground.fewshot"),
)


def by_key(key: str) -> Lab:
    for lab in LABS:
        if lab.key == key:
            return lab
    raise KeyError(key)


def service(lab: Lab, settings):
    """The lab's service for these settings (cheap: its models load on first use, shared by all)."""
    return importlib.import_module(f"{lab.package}.service").Service(settings)


def tab(lab: Lab):
    """The lab's tab module (`build(service)`)."""
    return importlib.import_module(f"{lab.package}.tab")
