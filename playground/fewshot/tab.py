"""Few-shot (MAML) tab: set a sine task (or type support points), then scrub or play the gradient steps
that adapt each bundled initialisation (MAML, first-order MAML, joint pretraining) side by side, with the
loss per step, the algorithm and its equations, and the held-out table from the cards.

Layout and wiring only: every action is a method of service.Service, every figure and text is made by
views.py. Events run with preprocess=False: the service validates the raw payloads itself. `build`
returns the lab's lesson link: every control, and what a link's state shows without a click.
"""
from __future__ import annotations

import gradio as gr

from playground.core import ui, validate
from playground.fewshot import tasks, views
from playground.fewshot.service import CONTROLS, DEFAULT, K_RANGE, MAX_POINTS, POINTS, POINTS_PARAM, STEPS

EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)
RAW = dict(preprocess=False)
QUIET = dict(show_progress="hidden", preprocess=False)
PRIVATE = dict(api_visibility="private", show_progress="hidden", preprocess=False)
FRAME_S = 0.5     # seconds per step while playing


def build(svc) -> ui.LessonLink:
    info, h = svc.info(), ui.handler

    def playing(a):
        return [*views.shown(a), gr.Slider(value=a.step), gr.Timer(active=True)]

    def ticked(a):
        # only ever switch the timer off here: switching it on would undo a Pause pressed during this tick
        return [*views.shown(a), gr.Slider(value=a.step), gr.Timer(active=False) if a.step >= a.steps else gr.skip()]

    gr.Markdown(views.intro(info), latex_delimiters=ui.LATEX, elem_id="fewshot-intro")
    state = gr.State(None)
    timer = gr.Timer(FRAME_S, active=False)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            amp = gr.Slider(*tasks.AMPLITUDE, value=DEFAULT["amplitude"], step=0.05, label=views.AMPLITUDE_LABEL,
                            elem_id="fewshot-amplitude")
            # the slider stops at pi rounded to its step (the service accepts up to pi itself)
            phase = gr.Slider(tasks.PHASE[0], round(tasks.PHASE[1], 2), value=DEFAULT["phase"], step=0.01,
                              label=views.PHASE_LABEL, elem_id="fewshot-phase")
            k = gr.Slider(*K_RANGE, value=DEFAULT["k"], step=1, label=views.K_LABEL, elem_id="fewshot-k")
            with gr.Row():
                seed = gr.Number(DEFAULT["seed"], label="seed of the points", precision=0, minimum=0,
                                 maximum=validate.MAX_SEED, elem_id="fewshot-seed")
                again = gr.Button("Other points", elem_id="fewshot-new-points")
            with gr.Accordion("or type your own points", open=False, elem_id="fewshot-points-box"):
                gr.Markdown(views.POINTS_NOTE)
                points = gr.Dataframe(headers=["x", "y"], datatype="number", column_count=2, interactive=True,
                                      label=f"support points (at most {MAX_POINTS} rows)", elem_id="fewshot-points")
                use_points = gr.Button("Adapt to these points", variant="primary", elem_id="fewshot-adapt-points")
                pts = gr.Textbox("", label=views.POINTS_TEXT_LABEL, max_lines=3, elem_id="fewshot-points-text")
        # the result: on a phone it comes first and stays in view while the controls above are used
        with gr.Column(scale=3, elem_classes=["result-sticky"]):
            curves = gr.Plot(label="each initialisation adapting to the task", elem_id="fewshot-curves")
            with gr.Row():
                shown = gr.Slider(0, STEPS, value=DEFAULT["step"], step=1, label=views.STEP_LABEL, scale=3,
                                  min_width=200, elem_id="fewshot-step")
                with gr.Column(scale=1, min_width=200):       # side by side under the slider on a phone
                    with gr.Row():
                        play = gr.Button(f"Play 0 → {STEPS}", variant="primary", min_width=90, elem_id="fewshot-play")
                        pause = gr.Button("Pause", min_width=90, elem_id="fewshot-pause")
    with gr.Row():
        with gr.Column(scale=2, min_width=280):
            table = gr.Markdown(label="the step shown", elem_id="fewshot-step-table")
            gif_btn = gr.Button("Export the steps as a GIF", elem_id="fewshot-gif-go")
            gif_file = gr.File(label=views.GIF_LABEL, interactive=False, visible=False, elem_id="fewshot-gif")
        with gr.Column(scale=3):
            losses = gr.Plot(label="loss per step", elem_id="fewshot-losses")
    with gr.Row():
        with gr.Column():
            gr.Markdown(views.algorithm(info), latex_delimiters=ui.LATEX, elem_id="fewshot-algorithm")
        with gr.Column():
            gr.Markdown(views.EQ_MAML, elem_id="fewshot-equations", **EQ)
    with gr.Accordion("Held-out tasks: MSE before adapting, after one step and after the last (the cards)", open=True,
                      elem_id="fewshot-heldout-box"):
        gr.Markdown(views.heldout_table(info), elem_id="fewshot-heldout", latex_delimiters=ui.LATEX)
        if info.models:
            gr.Plot(views.heldout_figure(info), label="held-out MSE per step", elem_id="fewshot-heldout-plot")

    view = [state, curves, losses, table]
    task_out = [*view, points, seed]
    task_in = [amp, phase, k, seed, shown]
    # a wave set by the sliders replaces typed points: the link then carries the wave, not the points
    gr.on([amp.release, phase.release, k.release, seed.submit], h(svc.sine_task, views.shown_task), task_in,
          task_out, api_name="fewshot_sine", trigger_mode="always_last", **QUIET).success(
        lambda: "", None, pts, **PRIVATE)
    again.click(h(svc.new_points, views.shown_task), task_in, task_out, api_name="fewshot_new_points",
                **QUIET).success(lambda: "", None, pts, **PRIVATE)
    use_points.click(h(svc.points_task, views.shown_points), [points, shown], [*view, points],
                     api_name="fewshot_points", **RAW).success(h(svc.current, views.points_as_text), state, pts,
                                                               **PRIVATE)
    pts.submit(h(svc.points_text_task, views.shown_points), [pts, shown], [*view, points], **PRIVATE).success(
        h(svc.current, views.points_as_text), state, pts, **PRIVATE)
    shown.input(h(svc.scrub, views.shown), [state, shown], view, api_name="fewshot_scrub",
                trigger_mode="always_last", **QUIET)
    play.click(h(svc.play, playing), state, [*view, shown, timer], api_name="fewshot_play", **QUIET)
    timer.tick(h(svc.advance, ticked), state, [*view, shown, timer], api_visibility="private", **QUIET)
    pause.click(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
    gif_btn.click(h(svc.current, lambda a: gr.File(views.steps_gif(a), visible=True)), state, gif_file,
                  api_name="fewshot_gif", **RAW, **ui.LONG)

    # --- the lesson link: every control; a link's state (and the tab's first opening) shows its result ---
    link = ui.LessonLink("fewshot")
    for name, comp in zip(CONTROLS, (amp, phase, k, seed, shown)):
        link.control(name, comp)
    link.control(POINTS, pts, POINTS_PARAM)

    def show(_view, amplitude, ph, kk, sd, step, text):
        if str(text or "").strip():
            return views.shown_points(svc.points_text_task(text, step))
        return views.shown_task(svc.sine_task(amplitude, ph, kk, sd, step))[:-1]     # the seed is the link's

    link.shows(h(show), [amp, phase, k, seed, shown, pts], [*view, points])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("fewshot")
