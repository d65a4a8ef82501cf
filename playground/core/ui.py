"""Small UI helpers shared by the tabs."""
from __future__ import annotations

import os


def standalone(build, title: str, port: int | None = None) -> None:
    """Serve one tab alone: `python -m playground.<lab>.tab`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from playground.core import device, hub, settings

    cfg = settings.from_env()
    hub.decide(cfg.offline)
    device.configure(cfg.device)
    with gr.Blocks(title=f"GenAI Playground: {title}", analytics_enabled=False) as demo:
        build(cfg)
    demo.queue(default_concurrency_limit=4).launch(server_name=cfg.host, server_port=port or cfg.port, share=False)
