"""What the Prompt lab does, with no UI: pick a backend (a local transformers model, the offline GGUF
converted once under `settings.cache_dir`, or an OpenAI-compatible server), then ask one question
under every technique, extract JSON, evaluate a technique over a labelled set (results shared
between users through `core.cache`), and show the next-token distribution and sampled continuations.

Every method validates its raw arguments through `core.validate` and returns plain data (the small
dataclasses below); `views.py` turns them into markdown and figures. Streaming actions are generators.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from playground.core import cache, device, timing, validate
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings, on_space
from playground.prompting import answers, evaluate, models, prompts
from playground.prompting.engine import GenConfig, Generation

MAX_QUESTION = 2000        # characters in the question / text
MAX_SYSTEM = 1000
MAX_GOLD = 100
MAX_EXAMPLES = 8           # few-shot rows
MAX_EXAMPLE_CHARS = 600
MAX_N = 16                 # self-consistency paths per question
MAX_NEW_TOKENS = 256
MAX_CSV_CHARS = 40_000
MAX_EVAL_N = 10
MAX_TOP_K = 200
MAX_URL = 300
TEMPERATURE = (0.0, 2.0)
EVAL_TEMPERATURE = (0.05, 2.0)   # self-consistency in an evaluation needs T > 0
TOP_P = (0.05, 1.0)
TOP_TOKENS = 20            # tokens shown in the next-token view
SAMPLES = 4                # sampled continuations shown beside the greedy one
SERVER = "OpenAI-compatible server (base URL below)"
CSV_SETS = {"my CSV (arithmetic)": "arithmetic", "my CSV (sentiment)": "sentiment"}
EVAL_SETS = [*evaluate.SETS, *CSV_SETS]
SPEED_PRESET = "Juggler (chain-of-thought)"

Progress = Callable[[float, "str | None"], None]


@dataclass(frozen=True)
class Answered:
    """One technique's finished answer."""
    technique: str
    prompt_text: str           # the exact text the model receives
    generation: Generation
    vote: answers.Vote         # over one path (greedy) or N sampled paths
    correct: str               # "yes" / "no", or "" when no expected answer was given
    sampled: bool              # self-consistency: N paths at temperature T


@dataclass(frozen=True)
class Comparison:
    """The side-by-side run so far: finished techniques, and the one being written."""
    backend: str
    n: int
    temperature: float
    done: tuple[Answered, ...] = ()
    writing: tuple[str, str, str] | None = None   # (technique, prompt text, text so far)
    waiting: str = ""                              # a technique sampling its N paths
    vote: answers.Vote | None = None               # the last self-consistency vote
    gold: str = ""                                 # the expected answer as the vote reads it


@dataclass(frozen=True)
class JsonExtraction:
    prompt_text: str
    raw: str
    check: answers.JsonCheck
    stats: str


@dataclass(frozen=True)
class EvalProgress:
    note: str
    results: dict | None = None        # {set: {technique: result}} once done
    title: str = ""


@dataclass(frozen=True)
class NextToken:
    tokens: list[str]                  # the most likely tokens, as shown (spaces as ␣)
    model_probs: list[float]           # the model's own distribution (T = 1, no filter)
    filtered_probs: list[float]        # after temperature, top-k and top-p
    kept: int                          # tokens that can still be drawn
    temperature: float
    top_k: int
    top_p: float


@dataclass(frozen=True)
class Continuations:
    greedy: Generation
    sampled: Generation
    temperature: float
    top_k: int
    top_p: float


@dataclass(frozen=True)
class Status:
    model: str                 # the default choice
    source: str                # "hub", "env" (PLAYGROUND_LLM) or "offline"
    problem: str = ""          # why no local model can run here ("" when it can)


def distribution(logits, tokenizer, temperature, top_k, top_p) -> NextToken:
    """The next-token view of logits (V,): the TOP_TOKENS likeliest tokens, their probabilities under the
    model (T = 1) and after temperature / top-k / top-p (clamped by the one policy). Shared with the
    Transformer lab, which reads its logits from its own forward pass."""
    from playground.prompting import sampling

    temperature, top_k, top_p = Service._filters(temperature, top_k, top_p)
    logits = logits[None]                                                        # (1, V)
    raw = sampling.filtered_probs(logits, 1.0)[0]                                # (V,)
    after = sampling.filtered_probs(logits, temperature, top_k, top_p)[0]        # (V,)
    ids, _ = sampling.top_tokens(after if temperature > 0 else raw, TOP_TOKENS)
    names = [repr(tokenizer.decode([i]))[1:-1].replace(" ", "␣") or "(empty)" for i in ids]
    return NextToken([f"{s} #{i}" for s, i in zip(names, ids)],               # ids keep same-looking tokens apart
                     [float(raw[i]) for i in ids], [float(after[i]) for i in ids], int((after > 0).sum()),
                     temperature, top_k, top_p)


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings

    # ---- backends -----------------------------------------------------------------------------

    def model_choices(self) -> list[str]:
        default = models.default_ref(use_gpu=device.get().type == "cuda")
        out = [default]
        if default != models.OFFLINE_REF and models.gguf_path() is not None:
            out.append(models.OFFLINE_REF)
        return out + [SERVER]

    def status(self) -> Status:
        ref = self.model_choices()[0]
        source = ("hub" if ref in (models.HUB_CPU, models.HUB_GPU) else
                  "env" if os.environ.get("PLAYGROUND_LLM") else "offline")
        ok, why = models.available()
        return Status(ref, source, "" if ok or ref != models.OFFLINE_REF else why)

    def _server_url(self, url) -> str:
        env = os.environ.get("PLAYGROUND_LLM_BASE_URL", "").strip()
        url = validate.text("Base URL", url, max_chars=MAX_URL, allow_empty=True).strip() or env
        if not url:
            raise InputError("Type the server's base URL, e.g. http://127.0.0.1:11434/v1 (Ollama) or "
                             "http://127.0.0.1:8000/v1 (vLLM), or set PLAYGROUND_LLM_BASE_URL.")
        if not url.startswith(("http://", "https://")):
            raise InputError("The base URL must start with http:// or https:// and usually ends in /v1.")
        if on_space() and url != env:
            raise InputError("On a shared Space only the server set by PLAYGROUND_LLM_BASE_URL can be used.")
        return url

    def _backend(self, choice, url="", api_model=""):
        """The backend for the user's choice; Unavailable (what to install or set) when none runs."""
        choice = validate.choice("Model", choice, self.model_choices())
        if choice == SERVER:
            from playground.prompting.remote import RemoteBackend

            api_model = validate.text("Server model name", api_model, max_chars=MAX_URL, allow_empty=True).strip()
            return RemoteBackend(self._server_url(url), api_model or os.environ.get("PLAYGROUND_LLM_API_MODEL") or None,
                                 api_key=os.environ.get("PLAYGROUND_LLM_API_KEY") or None)
        if choice == models.OFFLINE_REF:
            ok, why = models.available()
            if not ok:
                raise Unavailable(why)
        try:
            return models.load(choice, self.settings.cache_dir)
        except Unavailable:
            raise
        except Exception as e:  # noqa: BLE001 - a model that cannot load must not take the app down
            raise Unavailable(f"Could not load {choice}: {type(e).__name__}: {str(e)[:200]}. "
                              f"{models.INSTALL_HINT}") from None

    def _local_backend(self, choice):
        if choice == SERVER:
            raise InputError("The sampling view needs a local model: a server does not send the whole next-token "
                             "distribution. Pick a local model under Backend.")
        return self._backend(choice)

    # ---- argument checks ----------------------------------------------------------------------

    @staticmethod
    def _task(name) -> prompts.Task:
        return prompts.TASKS[validate.choice("Task", name, list(prompts.TASKS))]

    @staticmethod
    def _techniques(techniques) -> list[str]:
        chosen = validate.choices("Techniques", techniques, prompts.TECHNIQUES)
        if not chosen:
            raise InputError("Tick at least one technique.")
        return chosen

    @staticmethod
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
            raise InputError("The examples must be a table of (input, output) rows.")
        out = []
        for k, r in enumerate(rows, start=1):
            if not isinstance(r, (list, tuple)) or len(r) < 2:
                raise InputError("Each example needs an input and an output.")
            x, y = (validate.text(f"Example {k} {side}", "" if v is None else str(v), max_chars=MAX_EXAMPLE_CHARS,
                                  allow_empty=True).strip() for side, v in (("input", r[0]), ("output", r[1])))
            if not x and not y:
                continue
            if not x or not y:
                raise InputError("An example has an input but no output (or the reverse); fill in or clear that row.")
            out.append((x, y))
        if len(out) > MAX_EXAMPLES:
            raise InputError(f"Use at most {MAX_EXAMPLES} examples (got {len(out)}).")
        return out or None

    # ---- techniques side by side --------------------------------------------------------------

    @device.gpu(duration=120)
    def compare(self, choice, url, api_model, task_name, question, gold, system, table, techniques, n, temperature,
                top_p, max_new_tokens, seed) -> Iterator[Comparison]:
        """Every chosen technique on one question; yields the run so far as each answer is written."""
        task = self._task(task_name)
        question = validate.text("Question", question, max_chars=MAX_QUESTION)
        gold = validate.text("Expected answer", gold, max_chars=MAX_GOLD, allow_empty=True).strip()
        system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
        techniques = self._techniques(techniques)
        n = validate.integer("N (paths)", n, 1, MAX_N)
        temperature = validate.number("Temperature", temperature, *TEMPERATURE)
        top_p = validate.number("Top-p", top_p, *TOP_P)
        max_new_tokens = validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
        seed = validate.seed(seed)
        examples = self._examples(table)
        backend = self._backend(choice, url, api_model)
        shown_gold = (answers.normalise_number(gold) or "") if task.kind == "number" and gold else gold.lower()
        done: list[Answered] = []
        vote = None

        def snapshot(**kw) -> Comparison:
            return Comparison(backend.describe(), n, temperature, tuple(done), vote=vote, gold=shown_gold, **kw)

        for tech in techniques:
            chat = prompts.build(tech, task, question, system=system, examples=examples if tech == "few-shot" else None)
            text = backend.render(chat)
            sc = tech == "self-consistency"
            cfg = GenConfig(n=n if sc else 1, temperature=temperature if sc else 0.0, top_p=top_p if sc else 1.0,
                            max_new_tokens=max_new_tokens, seed=seed)
            if sc:
                yield snapshot(waiting=tech)
                gen = backend.generate([chat], cfg)
            else:
                for part in backend.stream(chat, cfg):
                    if isinstance(part, str):
                        yield snapshot(writing=(tech, text, part))
                    else:
                        gen = part
            v = answers.vote([answers.extract(c, task.kind, task.labels) for c in gen.texts[0]])
            correct = "" if not gold else ("yes" if answers.matches(v.winner, gold, task.kind) else "no")
            done.append(Answered(tech, text, gen, v, correct, sc))
            if sc:
                vote = v
            yield snapshot()

    # ---- structured output --------------------------------------------------------------------

    @device.gpu(duration=60)
    def extract_json(self, choice, url, api_model, text, system, max_new_tokens, seed) -> JsonExtraction:
        text = validate.text("Text", text, max_chars=MAX_QUESTION)
        system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
        max_new_tokens = validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
        seed = validate.seed(seed)
        backend = self._backend(choice, url, api_model)
        chat = prompts.json_chat(text, system=system)
        gen = backend.generate([chat], GenConfig(max_new_tokens=max_new_tokens, seed=seed))
        raw = gen.texts[0][0]
        return JsonExtraction(backend.render(chat), raw, answers.parse_json(raw, prompts.JSON_SCHEMA), gen.stats())

    # ---- evaluation ---------------------------------------------------------------------------

    def set_sizes(self) -> dict[str, int]:
        """Items in each bundled labelled set."""
        return {name: len(evaluate.load_set(name)) for name in evaluate.SETS}

    def bundled_evaluation(self) -> dict | None:
        """The figures `python -m demos.eval_prompt` wrote, or None when there are none."""
        try:
            data = json.loads(evaluate.BUNDLED.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if data.get("results") else None

    def _eval_rows(self, set_name, csv_text) -> tuple[list[dict], prompts.Task]:
        set_name = validate.choice("Set", set_name, EVAL_SETS)
        if set_name not in CSV_SETS:
            return evaluate.load_set(set_name), prompts.TASKS[set_name]
        csv_text = validate.text("CSV", csv_text, max_chars=MAX_CSV_CHARS)
        try:
            rows = evaluate.parse_csv(csv_text)
        except ValueError as e:
            raise InputError(f"CSV: {e}.") from None
        return rows, prompts.TASKS[CSV_SETS[set_name]]

    @device.gpu(duration=300)
    def run_eval(self, choice, url, api_model, set_name, csv_text, techniques, n, temperature, seed,
                 progress: Progress | None = None) -> Iterator[EvalProgress]:
        """Each chosen technique over the set; a progress note per batch (a generator, so Stop ends the
        work between two batches); finished techniques are shared through `core.cache`."""
        rows, task = self._eval_rows(set_name, csv_text)
        techniques = self._techniques(techniques)
        n = validate.integer("N (self-consistency paths)", n, 1, MAX_EVAL_N)
        temperature = validate.number("Temperature", temperature, *EVAL_TEMPERATURE)
        seed = validate.seed(seed)
        backend = self._backend(choice, url, api_model)
        results: dict[str, dict] = {}
        total = len(rows) * len(techniques)
        for k, tech in enumerate(techniques):
            params = {"n": n, "temperature": temperature, "seed": seed, "kind": task.key}
            key = ("prompt-eval", evaluate.cache_key(backend.name, rows, tech, params))
            result = cache.peek(key)
            if result is None:
                for step in evaluate.run(backend, task, rows, tech, n=n, temperature=temperature, seed=seed):
                    if "accuracy" in step:
                        result = step
                        continue
                    note = f"{tech}: {step['done']}/{step['total']} items..."
                    if progress is not None:
                        progress((k * len(rows) + step["done"]) / total, note)
                    yield EvalProgress(note)
                result = cache.once(key, lambda r=result: r)
            results[tech] = result
        yield EvalProgress(f"Done: {len(rows)} items x {len(techniques)} techniques (cached for re-runs).",
                           {set_name: results}, f"{backend.name}, {len(rows)} items")

    # ---- sampling -----------------------------------------------------------------------------

    def _sampling_prompt(self, choice, task_name, question, system, technique):
        task = self._task(task_name)
        question = validate.text("Question", question, max_chars=MAX_QUESTION)
        system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
        technique = validate.choice("Technique", technique, prompts.TECHNIQUES)
        return self._local_backend(choice), prompts.build(technique, task, question, system=system)

    @staticmethod
    def _filters(temperature, top_k, top_p) -> tuple[float, int, float]:
        return (validate.number("Temperature", temperature, *TEMPERATURE),
                validate.integer("Top-k", top_k, 0, MAX_TOP_K),
                validate.number("Top-p", top_p, *TOP_P))

    @device.gpu(duration=60)
    def next_token(self, choice, task_name, question, system, technique, temperature, top_k, top_p) -> NextToken:
        """The next-token distribution for the current prompt: the model's own (T = 1) and after the filters."""
        temperature, top_k, top_p = self._filters(temperature, top_k, top_p)
        backend, chat = self._sampling_prompt(choice, task_name, question, system, technique)
        return distribution(backend.next_token_logits(backend.render(chat)), backend.tokenizer,
                            temperature, top_k, top_p)

    def default_backend(self):
        """The default local model (the first model choice), loaded once and shared with every lab that
        reads the LLM (the Transformer lab); Unavailable says what to install when none can run."""
        return self._local_backend(self.model_choices()[0])

    @device.gpu(duration=60)
    def continuations(self, choice, task_name, question, system, technique, temperature, top_k, top_p,
                      max_new_tokens, seed) -> Continuations:
        """The greedy continuation beside SAMPLES sampled ones, drawn in one batched call."""
        temperature, top_k, top_p = self._filters(temperature, top_k, top_p)
        max_new_tokens = validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
        seed = validate.seed(seed)
        backend, chat = self._sampling_prompt(choice, task_name, question, system, technique)
        greedy = backend.generate([chat], GenConfig(max_new_tokens=max_new_tokens))
        sampled = backend.generate([chat], GenConfig(n=SAMPLES, temperature=max(temperature, 1e-3), top_k=top_k,
                                                     top_p=top_p, max_new_tokens=max_new_tokens, seed=seed))
        return Continuations(greedy, sampled, temperature, top_k, top_p)

    # ---- small UI helpers ---------------------------------------------------------------------

    def preset(self, name) -> dict:
        """A preset from the notes: {task, question, gold}; task 'json' is the structured-output one."""
        return prompts.PRESETS[validate.choice("Preset", name, list(prompts.PRESETS))]

    def task_examples(self, task_name) -> list[list[str]]:
        return [list(e) for e in self._task(task_name).examples]

    # ---- Home and the benchmarks --------------------------------------------------------------

    def speed_probe(self) -> dict:
        """One next-token distribution of the default model on the juggler question (median seconds)."""
        backend = self._local_backend(self.model_choices()[0])
        text = backend.render(prompts.build("zero-shot", prompts.ARITHMETIC, prompts.PRESETS[SPEED_PRESET]["question"]))
        return {"family": "LLM", "what": f"next-token distribution, {backend.name}",
                "seconds": timing.median_seconds(lambda: backend.next_token_logits(text))}

    def load_calls(self) -> list:
        q = prompts.PRESETS[SPEED_PRESET]["question"]
        return [("prompt_next_token", [self.model_choices()[0], "arithmetic", q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0])]
