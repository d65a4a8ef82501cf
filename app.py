"""GenAI Playground: one Gradio app, a tab per concept. Also the Hugging Face Space entry point.

    python app.py            serve on http://127.0.0.1:7860 (0.0.0.0 on a Space)
    python app.py --help     every setting (also settable by environment variables)
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from playground.core import hub, settings as settings_mod  # noqa: E402  (no heavy imports yet)



def _tours(cfg) -> dict:
    """The guided tours of the labs being served (assets/tours/<lab>.json), in tab order."""
    from playground.core import lesson

    return {key: lesson.load_tour(lesson.tour_path(key)) for key in cfg.tabs if lesson.tour_path(key).exists()}


def build_app(cfg: settings_mod.Settings | None = None):
    """Assemble the tabs named in the settings. Labs import their models lazily, so this is quick."""
    import gradio as gr

    from playground import labs
    from playground.core import device, ui  # noqa: F401  (ui: atomic result-file writes, see its docstring)

    cfg = cfg or settings_mod.from_env()
    device.configure(cfg.device)
    with ui.Blocks(title="GenAI Playground", analytics_enabled=False) as demo:
        gr.Markdown("# GenAI Playground\nThe core ideas of generative AI, live, on real models. "
                    f"Running on **{device.describe()}**, hub **{'online' if hub.online() else 'offline'}**.")
        room = ui.Classroom(_tours(cfg))
        with gr.Tabs() as main:
            for lab in labs.LABS:
                if lab.key not in cfg.tabs:
                    continue
                with gr.Tab(lab.title, id=lab.key, elem_id=f"tab-{lab.key}") as item:
                    room.add(lab.key, item, labs.tab(lab).build(labs.service(lab, cfg)))
        room.wire(demo, main)
    return ui.raw_payloads(demo)


def main(argv: list[str] | None = None) -> None:
    from playground.core import ui

    cfg = settings_mod.from_args(argv)
    hub.decide(cfg.offline)  # before transformers / open_clip are imported anywhere
    from playground.core import device

    device.configure(cfg.device, cfg.threads)   # torch threads per request, before any worker thread starts
    demo = build_app(cfg)
    from playground.core import cache

    cache.serve()                               # what loads once leaves the collector's view
    demo.queue(default_concurrency_limit=4)
    ui.launch(
        demo,
        server_name=cfg.host,
        server_port=cfg.port,
        share=False,
        **ui.LAUNCH,
        max_file_size="10mb",
        footer_links=["api", "settings"],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
