"""Prompt lab tab: techniques side by side, structured output, evaluation over labelled sets, and the
next-token distribution under temperature / top-k / top-p. Layout and wiring only (actions: `service.py`,
figures and text: `views.py`). Opening the lab or a lesson link shows what each technique would send and
never runs the model (thirty students open it at once, on a CPU); a button, a tour's reveal or a link
made with "Run the model when this link opens" does."""
from __future__ import annotations

import os

import gradio as gr

from playground.core import ui
from playground.prompting import prompts, views
from playground.prompting.service import (EVAL_SETS, MAX_CSV_CHARS, MAX_EVAL_N, MAX_N, MAX_NEW_TOKENS, MAX_QUESTION,
                                          MAX_SYSTEM)

DEFAULT_PRESET, JSON_PRESET = "Juggler (chain-of-thought)", "JSON extraction (structured output)"
ASK = "Ask with the ticked techniques"
EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)


def _compare_render(c):
    details, rows, fig = views.compare_outputs(c)
    return details, rows, ui.shown(fig), ui.shown(views.comparison_file(c))


def _eval_render(step):
    """A progress note leaves the figures as they are; the final step fills every output."""
    if step.results is None:
        return gr.update(), gr.update(), gr.update(), step.note, gr.update()
    return (*views.eval_outputs(step.results, step.title, step.note), ui.shown(views.eval_file(step.results)))


# each kind of result (service.link_view's) -> the view it fills, and how
RENDER = {"answers": ("compare", _compare_render), "eval": ("eval", _eval_render), "json": ("json", views.json_outputs),
          "preview": ("compare", lambda p: (views.preview_details(p, ASK), views.preview_rows(p), *[ui.shown(None)] * 2)),
          "json_preview": ("json", lambda p: (p, "", None, "Not run yet: press **Extract as JSON**.")),
          "bundled": ("eval", lambda d: (*views.bundled_view(d), ui.shown(views.eval_file(d and d["results"])))),
          "sampling": ("sampling", lambda r: (views.next_token_figure(r[0]), views.continuations_markdown(r[1])))}


def _preset_render(p):
    """A preset fills the question (and the task and expected answer) and opens the tab that uses it."""
    if p["task"] == "json":
        return gr.update(), gr.update(), gr.update(), p["question"], gr.update(selected="prompt-json")
    return p["task"], p["question"], p["gold"], gr.update(), gr.update(selected="prompt-compare")


def build(svc) -> ui.LessonLink:
    choices, h, link = svc.model_choices(), ui.handler, ui.LessonLink("prompt")
    c, env = link.control, os.environ.get       # c: a control a learner sets, named in the lesson link
    gr.Markdown(views.header(svc.status()), latex_delimiters=ui.LATEX)
    with gr.Accordion("Backend", open=False):
        with gr.Row():
            choice = c("model", gr.Dropdown(choices, value=choices[0], label="Model", elem_id="prompt-model"))
            url = c("url", gr.Textbox(env("PLAYGROUND_LLM_BASE_URL", ""), label="Server base URL", max_lines=1,
                                      placeholder="http://127.0.0.1:11434/v1", elem_id="prompt-url"))
            api_model = c("server_model", gr.Textbox(env("PLAYGROUND_LLM_API_MODEL", ""), label="Server model name",
                                                     max_lines=1, elem_id="prompt-server-model",
                                                     placeholder="(first model the server lists)"))
        gr.Markdown(views.BACKENDS)
    with gr.Row():
        preset = c("preset", gr.Dropdown(list(prompts.PRESETS), value=None, label="Preset from the notes",
                                         elem_id="prompt-preset"))
        task_name = c("task", gr.Radio(list(prompts.TASKS), value="arithmetic", label="Task (how the answer is read)",
                                       elem_id="prompt-task"))
        run_on_open = c("run", gr.Checkbox(False, label="Run the model when this link opens", elem_id="prompt-run-on-open",
                                           info="Unticked, a copied link shows the prompts; ticked, also the answers."))
    with gr.Row():
        question = c("question", gr.Textbox(prompts.PRESETS[DEFAULT_PRESET]["question"], lines=3, label="Question",
                                            elem_id="prompt-question", max_length=MAX_QUESTION, scale=4))
        gold = c("gold", gr.Textbox(prompts.PRESETS[DEFAULT_PRESET]["gold"], label="Expected answer (optional)",
                                    max_lines=1, elem_id="prompt-gold", scale=1))
    system = c("system", gr.Textbox(prompts.SYSTEM, label="System prompt", max_lines=3, max_length=MAX_SYSTEM,
                                    elem_id="prompt-system"))
    with gr.Tabs() as tabs:
        with gr.Tab("Side by side", id="prompt-compare") as compare_tab:
            with gr.Row():
                with gr.Column(scale=3):
                    techniques = c("techniques", gr.CheckboxGroup(list(prompts.TECHNIQUES), value=list(prompts.SINGLE_CALL),
                                                                  label="Techniques", elem_id="prompt-techniques"))
                    with gr.Row():
                        n = c("n", gr.Slider(1, MAX_N, value=8, step=1, label="N paths (self-consistency)", elem_id="prompt-n"))
                        temperature = c("temperature", gr.Slider(0.05, 1.5, value=0.7, step=0.05, elem_id="prompt-temperature",
                                                                 label="Temperature T (self-consistency)"))
                        top_p = c("top_p", gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p", elem_id="prompt-top-p"))
                        max_new = c("max_tokens", gr.Slider(8, MAX_NEW_TOKENS, value=96, step=8, label="Max new tokens",
                                                            elem_id="prompt-max-tokens"))
                        seed = c("seed", gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id="prompt-seed"))
                    gr.Markdown(views.SELF_CONSISTENCY, **EQ)
                    with gr.Accordion("ReAct and the prompt chain: several calls per answer", open=False):
                        gr.Markdown(views.agents_note(), **EQ)
                    with gr.Accordion("Few-shot examples (editable; used by the few-shot technique)", open=False):
                        table = gr.Dataframe(svc.task_examples("arithmetic"), headers=["input", "output"], wrap=True,
                                             column_count=(2, "fixed"), interactive=True, elem_id="prompt-examples")
                    run_btn = gr.Button(ASK, variant="primary", elem_id="prompt-run")
                with gr.Column(scale=2, elem_classes=["result-sticky"]):
                    summary = gr.Dataframe(headers=views.SUMMARY_HEADERS, interactive=False, label="Answers",
                                           elem_id="prompt-summary")
            votes = gr.Plot(label="Self-consistency vote", elem_id="prompt-votes", visible=False)
            answers_file = gr.File(label="Download the answers (JSON)", visible=False, elem_id="prompt-answers-file")
            details = gr.Markdown(elem_id="prompt-details")
            compare_out = [details, summary, votes, answers_file]
            compare_in = [choice, url, api_model, task_name, question, gold, system, table, techniques, n, temperature,
                          top_p, max_new, seed]
            run_btn.click(h(svc.compare, _compare_render), compare_in, compare_out, api_name="prompt_compare", **ui.LLM)

        with gr.Tab("Structured output", id="prompt-json") as json_tab:
            gr.Markdown(views.json_keys())
            json_text = c("json_text", gr.Textbox(prompts.PRESETS[JSON_PRESET]["question"], label="Text", lines=3,
                                                  elem_id="prompt-json-text", max_length=MAX_QUESTION))
            json_tokens = c("json_tokens", gr.Slider(16, MAX_NEW_TOKENS, value=96, step=8, label="Max new tokens",
                                                     elem_id="prompt-json-tokens"))
            json_btn = gr.Button("Extract as JSON", variant="primary", elem_id="prompt-json-run")
            with gr.Row():
                json_prompt = gr.Code(label="Exact text the model receives", language=None, lines=8,
                                      elem_id="prompt-json-prompt")
                json_raw = gr.Code(label="Raw completion", language=None, lines=8, elem_id="prompt-json-raw")
            with gr.Row():
                json_value = gr.JSON(label="Parsed", elem_id="prompt-json-value")
                json_verdict = gr.Markdown(elem_id="prompt-json-verdict")
            json_out = [json_prompt, json_raw, json_value, json_verdict]
            json_btn.click(h(svc.extract_json, views.json_outputs),
                           [choice, url, api_model, json_text, system, json_tokens, seed], json_out, api_name="prompt_json", **ui.LONG)

        with gr.Tab("Evaluate", id="prompt-eval") as eval_tab:
            gr.Markdown(views.accuracy_note(svc.set_sizes()), latex_delimiters=ui.LATEX)
            with gr.Row():
                eval_set = c("set", gr.Radio(EVAL_SETS, value="sentiment", label="Set", elem_id="prompt-eval-set"))
                eval_tech = c("eval_tech", gr.CheckboxGroup(list(prompts.TECHNIQUES), value=["zero-shot", "few-shot"],
                                                            label="Techniques", elem_id="prompt-eval-tech"))
                eval_n = c("eval_n", gr.Slider(1, MAX_EVAL_N, value=5, step=1, label="N (self-consistency)", elem_id="prompt-eval-n"))
            csv_box = c("csv", gr.Textbox(label="Your CSV (header: question,answer)", lines=4, max_length=MAX_CSV_CHARS,
                                          placeholder="question,answer\nWhat is 2 + 3?,5", elem_id="prompt-eval-csv"))
            with gr.Row():
                eval_btn = gr.Button("Evaluate", variant="primary", elem_id="prompt-eval-run")
                stop_btn = gr.Button("Stop", variant="secondary", elem_id="prompt-eval-stop")   # AA contrast
            acc0, line0, rows0, note0, file0 = RENDER["bundled"][1](svc.bundled_evaluation())
            eval_note = gr.Markdown(note0, elem_id="prompt-eval-note")
            with gr.Row():
                acc_plot = gr.Plot(acc0, label="accuracy per technique", elem_id="prompt-eval-bars")
                n_plot = gr.Plot(line0, label="self-consistency against N", elem_id="prompt-eval-n-plot")
            eval_rows = gr.Dataframe(rows0, headers=views.EVAL_HEADERS, interactive=False, elem_id="prompt-eval-table")
            eval_file = gr.File(label="Download the results with every completion (JSON)", elem_id="prompt-eval-file",
                                **{k: file0[k] for k in ("value", "visible")})
            eval_out = [acc_plot, n_plot, eval_rows, eval_note, eval_file]
            eval_in = [choice, url, api_model, eval_set, csv_box, eval_tech, eval_n, temperature, seed]
            ev = eval_btn.click(h(svc.run_eval, _eval_render), eval_in, eval_out, api_name="prompt_evaluate", **ui.LONG)
            stop_btn.click(lambda: "Stopped.", None, eval_note, cancels=[ev], api_name=False)

        with gr.Tab("Sampling", id="prompt-sampling") as sampling_tab:
            gr.Markdown(views.SAMPLING, **EQ)
            with gr.Row():
                with gr.Column(scale=2):
                    s_tech = c("s_tech", gr.Dropdown(list(prompts.TECHNIQUES[:4]), value="zero-shot",
                                                     label="Prompt (technique)", elem_id="prompt-s-tech"))
                    s_temp = c("s_temp", gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Temperature T", elem_id="prompt-s-temp"))
                    s_topk = c("s_topk", gr.Slider(0, 100, value=0, step=1, label="Top-k (0 = off)", elem_id="prompt-s-topk"))
                    s_topp = c("s_topp", gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p", elem_id="prompt-s-topp"))
                    s_tokens = c("s_tokens", gr.Slider(4, 64, value=24, step=4, label="Max new tokens",
                                                       elem_id="prompt-s-tokens"))
                    dist_btn = gr.Button("Show the next-token distribution", elem_id="prompt-dist-run")
                    cont_btn = gr.Button("Greedy against sampled continuations", elem_id="prompt-cont-run")
                with gr.Column(scale=3, elem_classes=["result-sticky"]):
                    dist = gr.Plot(label="next-token distribution", elem_id="prompt-dist")
            cont = gr.Markdown(elem_id="prompt-cont")
            s_inputs = [choice, task_name, question, system, s_tech, s_temp, s_topk, s_topp]
            next_token = h(svc.next_token, views.next_token_figure)
            dist_btn.click(next_token, s_inputs, dist, api_name="prompt_next_token")
            gr.on([x.release for x in (s_temp, s_topk, s_topp)], next_token, s_inputs, dist, api_name=False,
                  trigger_mode="always_last")
            cont_btn.click(h(svc.continuations, views.continuations_markdown), [*s_inputs, s_tokens, seed],
                           cont, api_name="prompt_sample", **ui.LONG)

    # what each technique would send follows every edit (no model run: the chat template and a token count)
    preview_in = [x for x in compare_in if x is not gold]
    live = dict(api_name=False, trigger_mode="always_last", show_progress="hidden")
    preview = h(svc.preview, RENDER["preview"][1])
    gr.on([choice.input, question.input, system.input, table.input, techniques.input, seed.input,
           *(s.release for s in (n, temperature, top_p, max_new))], preview, preview_in, compare_out, **live)
    examples = dict(fn=h(svc.task_examples), inputs=task_name, outputs=table, api_name=False)
    preset.input(h(svc.preset, _preset_render), preset, [task_name, question, gold, json_text, tabs],
                 api_name=False).then(**examples).then(preview, preview_in, compare_out, **live)
    task_name.input(**examples).then(preview, preview_in, compare_out, **live)

    # a link's sub-tab, and what its state shows unclicked (the few-shot table is the task's own; link_view)
    link.views(tabs, {"compare": compare_tab, "json": json_tab, "eval": eval_tab, "sampling": sampling_tab})
    spans = {"compare": compare_out, "json": json_out, "eval": eval_out, "sampling": [dist, cont]}

    def show(view, *values):
        v = dict(zip(link.controls, values))
        kind, result = svc.link_view(view or "compare", v)
        where, render = RENDER.get(kind, (None, None))
        return [svc.task_examples(v["task"]), *(x for name, outs in spans.items()
                                                for x in (render(result) if name == where else [gr.skip()] * len(outs)))]
    link.shows(h(show), list(link.controls.values()), [table, *(x for outs in spans.values() for x in outs)])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("prompt")
