"""Home tab: the map of generative model families, the GAN / VAE / diffusion comparison with a speed
column measured live by each lab's service, and this machine's facts with a round-trip echo."""
from __future__ import annotations

import gradio as gr

from playground.core import ui
from playground.home import views


def build(svc) -> None:
    gr.Markdown("## The families of generative models")
    gr.HTML(views.FAMILY_MAP)
    gr.Markdown("## GAN, VAE and diffusion compared\nThe last column is measured on the machine running this "
                "app, by each lab's own model: press **Measure**.")
    table = gr.Dataframe(value=views.comparison_rows(), headers=views.HEADERS, interactive=False, wrap=True,
                         elem_id="home-comparison")
    gr.Button("Measure on this machine", elem_id="home-measure").click(
        ui.handler(svc.measure_speeds, views.comparison_rows), None, table, api_name="measure_speeds")
    with gr.Accordion("This machine", open=False, elem_id="home-machine"):
        gr.Markdown(views.machine_markdown(svc.machine_facts()))
        with gr.Row():
            ping_in = gr.Textbox(value="ping", label="Send", max_lines=1, elem_id="echo-in")
            ping_out = gr.Textbox(label="Echoed back", interactive=False, elem_id="echo-out")
        rtt = gr.Markdown()
        t0 = gr.State(0.0)
        # Time the round trip in the browser: stamp, call, then read the clock in JS.
        ping_in.submit(None, None, t0, js="() => performance.now()").then(
            ui.handler(svc.echo), ping_in, ping_out, api_name="echo").then(
            None, t0, rtt, js="(t) => `Round trip: ${(performance.now() - t).toFixed(1)} ms`")


if __name__ == "__main__":
    ui.standalone("home")
