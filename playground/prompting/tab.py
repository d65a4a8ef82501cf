"""Prompt lab tab: techniques side by side, structured output, evaluation over labelled sets, and the
next-token distribution under temperature / top-k / top-p. Layout and wiring only: every action is a
call into `service.py`, every figure and text comes from `views.py`."""
from __future__ import annotations

import os

import gradio as gr

from playground.core import ui
from playground.prompting import prompts, views
from playground.prompting.service import (EVAL_SETS, MAX_CSV_CHARS, MAX_EVAL_N, MAX_N, MAX_NEW_TOKENS, MAX_QUESTION,
                                          MAX_SYSTEM)

DEFAULT_PRESET = "Juggler (chain-of-thought)"
JSON_PRESET = "JSON extraction (structured output)"


def _eval_render(step):
    """A progress note leaves the figures as they are; the final step fills every output."""
    if step.results is None:
        return gr.update(), gr.update(), gr.update(), step.note
    return views.eval_outputs(step.results, step.title, step.note)


def _preset_render(p):
    """A preset fills the question (and the task and expected answer) and opens the tab that uses it."""
    if p["task"] == "json":
        return gr.update(), gr.update(), gr.update(), p["question"], gr.update(selected="prompt-json")
    return p["task"], p["question"], p["gold"], gr.update(), gr.update(selected="prompt-compare")


def build(svc) -> None:
    choices = svc.model_choices()
    gr.Markdown(views.header(svc.status()), latex_delimiters=ui.LATEX)
    with gr.Accordion("Backend", open=False):
        with gr.Row():
            choice = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="prompt-model")
            url = gr.Textbox(value=os.environ.get("PLAYGROUND_LLM_BASE_URL", ""), label="Server base URL",
                             placeholder="http://127.0.0.1:11434/v1", max_lines=1)
            api_model = gr.Textbox(value=os.environ.get("PLAYGROUND_LLM_API_MODEL", ""), label="Server model name",
                                   placeholder="(first model the server lists)", max_lines=1)
        gr.Markdown(views.BACKENDS)
    with gr.Row():
        preset = gr.Dropdown(list(prompts.PRESETS), value=None, label="Preset from the notes", elem_id="prompt-preset")
        task_name = gr.Radio(list(prompts.TASKS), value="arithmetic", label="Task (how the answer is read)",
                             elem_id="prompt-task")
    with gr.Row():
        question = gr.Textbox(value=prompts.PRESETS[DEFAULT_PRESET]["question"], lines=3, label="Question",
                              elem_id="prompt-question", max_length=MAX_QUESTION, scale=4)
        gold = gr.Textbox(value=prompts.PRESETS[DEFAULT_PRESET]["gold"], label="Expected answer (optional)",
                          max_lines=1, elem_id="prompt-gold", scale=1)
    system = gr.Textbox(value=prompts.SYSTEM, label="System prompt", max_lines=3, max_length=MAX_SYSTEM)

    with gr.Tabs() as tabs:
        with gr.Tab("Side by side", id="prompt-compare"):
            with gr.Row():
                techniques = gr.CheckboxGroup(list(prompts.TECHNIQUES), value=list(prompts.TECHNIQUES),
                                              label="Techniques", elem_id="prompt-techniques")
            with gr.Row():
                n = gr.Slider(1, MAX_N, value=8, step=1, label="N paths (self-consistency)", elem_id="prompt-n")
                temperature = gr.Slider(0.05, 1.5, value=0.7, step=0.05, label="Temperature T (self-consistency)")
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
                max_new = gr.Slider(8, MAX_NEW_TOKENS, value=96, step=8, label="Max new tokens")
                seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
            gr.Markdown(views.SELF_CONSISTENCY, elem_classes=["equation"], latex_delimiters=ui.LATEX)
            with gr.Accordion("Few-shot examples (editable; used by the few-shot technique)", open=False):
                table = gr.Dataframe(value=svc.task_examples("arithmetic"), headers=["input", "output"],
                                     column_count=(2, "fixed"), interactive=True, wrap=True, elem_id="prompt-examples")
            run_btn = gr.Button("Ask with every technique", variant="primary", elem_id="prompt-run")
            summary = gr.Dataframe(headers=views.SUMMARY_HEADERS, interactive=False, elem_id="prompt-summary")
            votes = gr.Plot(label="Self-consistency vote", elem_id="prompt-votes")
            details = gr.Markdown(elem_id="prompt-details")
            run_btn.click(ui.handler(svc.compare, views.compare_outputs),
                          [choice, url, api_model, task_name, question, gold, system, table, techniques, n,
                           temperature, top_p, max_new, seed], [details, summary, votes], api_name="prompt_compare")

        with gr.Tab("Structured output", id="prompt-json"):
            gr.Markdown(views.json_keys())
            json_text = gr.Textbox(value=prompts.PRESETS[JSON_PRESET]["question"], label="Text", lines=3,
                                   elem_id="prompt-json-text", max_length=MAX_QUESTION)
            json_tokens = gr.Slider(16, MAX_NEW_TOKENS, value=96, step=8, label="Max new tokens")
            json_btn = gr.Button("Extract as JSON", variant="primary", elem_id="prompt-json-run")
            with gr.Row():
                json_prompt = gr.Code(label="Exact text the model receives", language=None, lines=8)
                json_raw = gr.Code(label="Raw completion", language=None, lines=8, elem_id="prompt-json-raw")
            with gr.Row():
                json_value = gr.JSON(label="Parsed")
                json_verdict = gr.Markdown(elem_id="prompt-json-verdict")
            json_btn.click(ui.handler(svc.extract_json, views.json_outputs),
                           [choice, url, api_model, json_text, system, json_tokens, seed],
                           [json_prompt, json_raw, json_value, json_verdict], api_name="prompt_json")

        with gr.Tab("Evaluate", id="prompt-eval"):
            gr.Markdown(views.accuracy_note(svc.set_sizes()), latex_delimiters=ui.LATEX)
            with gr.Row():
                eval_set = gr.Radio(EVAL_SETS, value="sentiment", label="Set", elem_id="prompt-eval-set")
                eval_tech = gr.CheckboxGroup(list(prompts.TECHNIQUES), value=["zero-shot", "few-shot"],
                                             label="Techniques", elem_id="prompt-eval-tech")
                eval_n = gr.Slider(1, MAX_EVAL_N, value=5, step=1, label="N (self-consistency)")
            csv_box = gr.Textbox(label="Your CSV (header: question,answer)", lines=4, max_length=MAX_CSV_CHARS,
                                 placeholder="question,answer\nWhat is 2 + 3?,5")
            with gr.Row():
                eval_btn = gr.Button("Evaluate", variant="primary", elem_id="prompt-eval-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="prompt-eval-stop")
            acc0, line0, rows0, note0 = views.bundled_view(svc.bundled_evaluation())
            eval_note = gr.Markdown(note0, elem_id="prompt-eval-note")
            with gr.Row():
                acc_plot = gr.Plot(acc0, label="accuracy per technique", elem_id="prompt-eval-bars")
                n_plot = gr.Plot(line0, label="self-consistency against N")
            eval_rows = gr.Dataframe(rows0, headers=views.EVAL_HEADERS, interactive=False, elem_id="prompt-eval-table")
            ev = eval_btn.click(ui.handler(svc.run_eval, _eval_render),
                                [choice, url, api_model, eval_set, csv_box, eval_tech, eval_n, temperature, seed],
                                [acc_plot, n_plot, eval_rows, eval_note], api_name="prompt_evaluate")
            stop_btn.click(lambda: "Stopped.", None, eval_note, cancels=[ev], api_name=False)

        with gr.Tab("Sampling", id="prompt-sampling"):
            gr.Markdown(views.SAMPLING, elem_classes=["equation"], latex_delimiters=ui.LATEX)
            with gr.Row():
                s_tech = gr.Dropdown(list(prompts.TECHNIQUES[:4]), value="zero-shot", label="Prompt (technique)")
                s_temp = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Temperature T", elem_id="prompt-s-temp")
                s_topk = gr.Slider(0, 100, value=0, step=1, label="Top-k (0 = off)")
                s_topp = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
                s_tokens = gr.Slider(4, 64, value=24, step=4, label="Max new tokens")
            dist_btn = gr.Button("Show the next-token distribution", elem_id="prompt-dist-run")
            dist = gr.Plot(label="next-token distribution", elem_id="prompt-dist")
            cont_btn = gr.Button("Greedy against sampled continuations", elem_id="prompt-cont-run")
            cont = gr.Markdown(elem_id="prompt-cont")
            s_inputs = [choice, task_name, question, system, s_tech, s_temp, s_topk, s_topp]
            next_token = ui.handler(svc.next_token, views.next_token_figure)
            dist_btn.click(next_token, s_inputs, dist, api_name="prompt_next_token")
            for ctl in (s_temp, s_topk, s_topp):
                ctl.release(next_token, s_inputs, dist, api_name=False, trigger_mode="always_last")
            cont_btn.click(ui.handler(svc.continuations, views.continuations_markdown), [*s_inputs, s_tokens, seed],
                           cont, api_name="prompt_sample")

    preset.input(ui.handler(svc.preset, _preset_render), preset, [task_name, question, gold, json_text, tabs],
                 api_name=False)
    task_name.input(ui.handler(svc.task_examples), task_name, table, api_name=False)


if __name__ == "__main__":
    ui.standalone("prompt")
