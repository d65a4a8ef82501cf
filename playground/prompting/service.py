"""What the Prompt lab does, with no UI: pick a backend (a local transformers model, the offline GGUF
converted once under `settings.cache_dir`, or an OpenAI-compatible server), then ask one question
under every technique, extract JSON, evaluate a technique over a labelled set (results shared
between users through `core.cache`), and show the next-token distribution and sampled continuations.
Before any of that, `preview` shows what each technique would send (the exact text, counted in the
model's tokens) without running the model: what a lab shows when it is opened. `tour_check` answers
the guided tour's questions by running the model at reveal time.

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
from playground.prompting import agents, answers, evaluate, models, prompts
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
DIRECT = ("zero-shot", "few-shot")                  # techniques that ask for the answer straight away
REASONED = ("CoT (zero-shot)", "CoT (few-shot)")    # techniques that ask for the reasoning first
GREEDY_TWIN = "CoT (few-shot)"     # self-consistency samples this technique's prompt; greedy, its reference
FORMAT_ITEMS = (1, 30, 10)         # tour: items of a bundled set behind the answer-format step (min, max, default)

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
    question: str = ""
    task: str = ""
    top_p: float = 1.0
    seed: int = 0
    finished: bool = False                         # every chosen technique has answered


@dataclass(frozen=True)
class PromptPreview:
    """What one technique would send, before anything runs."""
    technique: str
    text: str                  # the exact text the model would receive
    tokens: int | None         # its length in the model's tokens (None: the server counts them)
    n: int                     # paths drawn (1: greedy)
    temperature: float
    top_p: float
    max_new_tokens: int


@dataclass(frozen=True)
class Preview:
    backend: str               # what would answer
    prompts: tuple[PromptPreview, ...]
    problem: str = ""          # why no model can answer here ("" when one can); the texts are then plain turns


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


TOUR_CHECKS = {"techniques_right": "_check_techniques_right", "format": "_check_format", "vote": "_check_vote",
               "twice": "_check_twice", "kept": "_check_kept", "json": "_check_json"}
SNIPPET = 160              # characters of a completion quoted in a tour's reveal


def _snippet(text: str) -> str:
    """A completion quoted on one line, cut to SNIPPET characters, its markdown characters escaped."""
    t = " ".join(text.split())
    t = (t[:SNIPPET] + "...") if len(t) > SNIPPET else (t or "(empty)")
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in t)


def _bare(completion: str, task: prompts.Task) -> bool:
    """The completion is the answer alone, in the asked-for form (one label, or one number)."""
    t = completion.strip().strip(".!'\"")
    if task.kind == "number":
        return answers.normalise_number(t) is not None
    return t.lower() in [lab.lower() for lab in task.labels]


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


def _hub_on_gpu(self, choice, *args, **kwargs) -> bool:
    """device.routed's test: only a hub model on the GPU runs inside spaces.GPU on ZeroGPU."""
    return self.on_gpu(choice)


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

    def on_gpu(self, choice) -> bool:
        """Does this model choice run on a GPU? (A server runs elsewhere; see models.device_for.)"""
        return choice != SERVER and models.device_for(choice).type == "cuda"

    def _backend(self, choice, url="", api_model=""):
        """The backend for the user's choice; Unavailable (what to install or set) when none runs. A call
        that lost its GPU (device.routed) gets the offline model on the CPU instead of a hub model."""
        choice = validate.choice("Model", choice, self.model_choices())
        if device.fallen_back() and choice != SERVER:
            choice = models.OFFLINE_REF
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

    def _compare_args(self, task_name, question, gold, system, table, techniques, n, temperature, top_p,
                      max_new_tokens, seed, blank_question: bool = False) -> dict:
        """The side-by-side run's arguments, checked by the one policy (shared by compare and preview)."""
        return dict(task=self._task(task_name),
                    question=validate.text("Question", question, max_chars=MAX_QUESTION, allow_empty=blank_question),
                    gold=validate.text("Expected answer", gold, max_chars=MAX_GOLD, allow_empty=True).strip(),
                    system=validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True),
                    techniques=self._techniques(techniques), n=validate.integer("N (paths)", n, 1, MAX_N),
                    temperature=validate.number("Temperature", temperature, *TEMPERATURE),
                    top_p=validate.number("Top-p", top_p, *TOP_P),
                    max_new_tokens=validate.integer("Max new tokens", max_new_tokens, 1, MAX_NEW_TOKENS),
                    seed=validate.seed(seed), examples=self._examples(table))

    @staticmethod
    def _config(tech: str, a: dict) -> GenConfig:
        """Greedy for one answer; N paths at temperature T for self-consistency."""
        sc = tech == "self-consistency"
        return GenConfig(n=a["n"] if sc else 1, temperature=a["temperature"] if sc else 0.0,
                         top_p=a["top_p"] if sc else 1.0, max_new_tokens=a["max_new_tokens"], seed=a["seed"])

    @staticmethod
    def _chat(tech: str, a: dict) -> list[dict]:
        return prompts.build(tech, a["task"], a["question"], system=a["system"],
                             examples=a["examples"] if tech == "few-shot" else None)

    @staticmethod
    def _answer_key(backend, a: dict) -> tuple | None:
        """The key of a finished side-by-side run in `core.cache`: a local model's run is a function of
        its arguments (greedy, or sampled from the seed), so a run asked for by a tour step or a link
        is made once and shared. A server's answers are not cached."""
        if getattr(backend, "kind", "") != "local":
            return None
        return ("prompt-answer", backend.name, json.dumps({**a, "task": a["task"].key}, sort_keys=True, default=str))

    @device.routed(_hub_on_gpu, duration=120)
    def compare(self, choice, url, api_model, task_name, question, gold, system, table, techniques, n, temperature,
                top_p, max_new_tokens, seed) -> Iterator[Comparison]:
        """Every chosen technique on one question; yields the run so far as each answer is written.
        A run already made for a tour step or a link (see `answer`) is shown at once."""
        a = self._compare_args(task_name, question, gold, system, table, techniques, n, temperature, top_p,
                               max_new_tokens, seed)
        backend = self._backend(choice, url, api_model)
        key = self._answer_key(backend, a)
        made = cache.peek(key) if key else None
        if made is not None:
            yield made
            return
        yield from self._run_compare(backend, a)

    @staticmethod
    def _writer(backend):
        """Who writes a local model's tokens: the model's Gang (engine.Gang), shared by every student, so
        that students who press Ask together are decoded in one loop, each from their own seed. A server
        backend writes its own."""
        if getattr(backend, "kind", "") != "local":
            return backend
        from playground.prompting.engine import Gang

        return cache.once(("prompt-gang", backend.name, str(backend.device), id(backend)), lambda: Gang(backend))

    def _run_compare(self, backend, a: dict) -> Iterator[Comparison]:
        task, gold = a["task"], a["gold"]
        writer = self._writer(backend)
        shown_gold = (answers.normalise_number(gold) or "") if task.kind == "number" and gold else gold.lower()
        done: list[Answered] = []
        vote = None

        def snapshot(**kw) -> Comparison:
            return Comparison(backend.describe(), a["n"], a["temperature"], tuple(done), vote=vote, gold=shown_gold,
                              question=a["question"], task=task.key, top_p=a["top_p"], seed=a["seed"], **kw)

        for tech in a["techniques"]:
            chat = self._chat(tech, a)
            text = backend.render(chat)
            sc = tech == "self-consistency"
            cfg = self._config(tech, a)
            if tech in prompts.MULTI_CALL:
                for part in self._run_agent(writer, tech, a, cfg):
                    if isinstance(part, str):
                        yield snapshot(writing=(tech, text, part))
                    else:
                        gen = part
            elif sc:
                yield snapshot(waiting=tech)
                gen = writer.generate([chat], cfg)
            else:
                for part in writer.stream(chat, cfg):
                    if isinstance(part, str):
                        yield snapshot(writing=(tech, text, part))
                    else:
                        gen = part
            v = answers.vote([answers.extract(agents.answer_part(tech, c), task.kind, task.labels) for c in gen.texts[0]])
            correct = "" if not gold else ("yes" if answers.matches(v.winner, gold, task.kind) else "no")
            done.append(Answered(tech, text, gen, v, correct, sc))
            if sc:
                vote = v
            yield snapshot(finished=len(done) == len(a["techniques"]))

    @staticmethod
    def _run_agent(writer, tech: str, a: dict, cfg: GenConfig) -> Iterator[str | Generation]:
        """A ReAct loop or a prompt chain (agents.py), each model call streamed: yields the trace so far as
        it grows, then a Generation whose one text is the whole trace (tokens and seconds summed)."""
        agent = agents.make(tech, a["task"], a["question"], a["system"])
        tokens, seconds = 0, 0.0
        while not agent.done:
            gen = None
            for part in writer.stream(agent.chat(), cfg):
                if isinstance(part, str):
                    yield agent.trace(part)
                else:
                    gen = part
            agent.feed(gen.texts[0][0])
            tokens, seconds = tokens + gen.tokens, seconds + gen.seconds
            yield agent.trace()
        yield Generation([[agent.trace()]], tokens, seconds)

    @device.routed(_hub_on_gpu, duration=120)
    def answer(self, choice, url, api_model, task_name, question, gold, system, table, techniques, n, temperature,
               top_p, max_new_tokens, seed) -> Comparison:
        """The side-by-side run to its end, made once and shared (`core.cache`) for a local model: thirty
        students opening one link, or revealing one tour step, cost one run; pressing Ask afterwards
        shows it at once."""
        a = self._compare_args(task_name, question, gold, system, table, techniques, n, temperature, top_p,
                               max_new_tokens, seed)
        backend = self._backend(choice, url, api_model)

        def run() -> Comparison:
            *_, last = self._run_compare(backend, a)
            return last
        key = self._answer_key(backend, a)
        return cache.once(key, run) if key else run()

    def _renderer(self, choice, url, api_model):
        """(render(chat) -> text, count(text) -> tokens or None, description, problem) without running a
        model: the local model's chat template (loading it once, shared), a server's request body, or,
        when no model is available, the plain turns and why."""
        choice = validate.choice("Model", choice, self.model_choices())
        if choice == SERVER:
            from playground.prompting.remote import request_json

            name = validate.text("Server model name", api_model, max_chars=MAX_URL, allow_empty=True).strip()
            name = name or os.environ.get("PLAYGROUND_LLM_API_MODEL") or "(the first model the server lists)"
            try:
                where = self._server_url(url)
            except InputError as e:
                return (lambda chat: request_json(name, chat)), None, f"`{name}` on a server", str(e)
            return (lambda chat: request_json(name, chat)), None, f"`{name}` (OpenAI-compatible server at {where})", ""
        try:
            backend = self._backend(choice)
        except Unavailable as e:
            from playground.prompting.engine import plain_format

            return plain_format, None, f"`{choice}`", str(e)

        def count(text: str) -> int:
            return len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])
        return backend.render, count, backend.describe(), ""

    def preview(self, choice, url, api_model, task_name, question, system, table, techniques, n, temperature, top_p,
                max_new_tokens, seed) -> Preview:
        """What each technique would send, and how it would be decoded, without running the model (cheap
        enough to follow every edit; a question being typed may be blank)."""
        a = self._compare_args(task_name, question, "", system, table, techniques, n, temperature, top_p,
                               max_new_tokens, seed, blank_question=True)
        render, count, describe, problem = self._renderer(choice, url, api_model)
        out = []
        for tech in a["techniques"]:
            text, cfg = render(self._chat(tech, a)), self._config(tech, a)
            out.append(PromptPreview(tech, text, count(text) if count else None, cfg.n, cfg.temperature, cfg.top_p,
                                     cfg.max_new_tokens))
        return Preview(describe, tuple(out), problem)

    # ---- structured output --------------------------------------------------------------------

    @device.routed(_hub_on_gpu, duration=60)
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

    def json_preview(self, choice, url, api_model, text, system) -> str:
        """The exact text the structured-output request would send, without running the model."""
        text = validate.text("Text", text, max_chars=MAX_QUESTION, allow_empty=True)
        system = validate.text("System prompt", system, max_chars=MAX_SYSTEM, allow_empty=True)
        render, _, _, problem = self._renderer(choice, url, api_model)
        return render(prompts.json_chat(text, system=system)) + (f"\n\n(No model can answer here: {problem})"
                                                                 if problem else "")

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

    @device.routed(_hub_on_gpu, duration=300)
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

    def evaluation(self, choice, url, api_model, set_name, csv_text, techniques, n, temperature, seed) -> EvalProgress:
        """`run_eval` to its end, made once for the same arguments however many users ask at once (a
        link that asks for an evaluation, opened by a class)."""
        key = ("prompt-evaluation", json.dumps([choice, url, api_model, set_name, csv_text, techniques, n, temperature,
                                                seed], default=str))

        def run() -> EvalProgress:
            *_, last = self.run_eval(choice, url, api_model, set_name, csv_text, techniques, n, temperature, seed)
            return last
        return cache.once(key, run)

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

    @device.routed(_hub_on_gpu, duration=60)
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

    @device.routed(_hub_on_gpu, duration=60)
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

    # ---- what a lesson link shows --------------------------------------------------------------

    def link_view(self, view: str, v: dict) -> tuple[str, object]:
        """What a lesson link's state shows without a click, as (kind, result): by default the exact prompts
        of the view (no model run: thirty students open one link at once on a CPU); with the link's
        `run` ticked, the view's answers, made once and shared. v: the link's values by name."""
        backend, run = (v["model"], v["url"], v["server_model"]), bool(v["run"])
        if view == "json":
            if run:
                return "json", self.extract_json(*backend, v["json_text"], v["system"], v["json_tokens"], v["seed"])
            return "json_preview", self.json_preview(*backend, v["json_text"], v["system"])
        if view == "eval":
            if run:
                return "eval", self.evaluation(*backend, v["set"], v["csv"], v["eval_tech"], v["eval_n"],
                                               v["temperature"], v["seed"])
            return "bundled", self.bundled_evaluation()
        if view == "sampling":
            s = (v["model"], v["task"], v["question"], v["system"], v["s_tech"], v["s_temp"], v["s_topk"], v["s_topp"])
            return ("sampling", (self.next_token(*s), self.continuations(*s, v["s_tokens"], v["seed"]))) if run \
                else ("none", None)
        knobs = (v["techniques"], v["n"], v["temperature"], v["top_p"], v["max_tokens"], v["seed"])
        if run:
            return "answers", self.answer(*backend, v["task"], v["question"], v["gold"], v["system"], None, *knobs)
        return "preview", self.preview(*backend, v["task"], v["question"], v["system"], None, *knobs)

    # ---- small UI helpers ---------------------------------------------------------------------

    def preset(self, name) -> dict:
        """A preset from the notes: {task, question, gold}; task 'json' is the structured-output one."""
        return prompts.PRESETS[validate.choice("Preset", name, list(prompts.PRESETS))]

    def task_examples(self, task_name) -> list[list[str]]:
        return [list(e) for e in self._task(task_name).examples]

    # ---- the guided tour ------------------------------------------------------------------------

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer, computed by running the model at reveal time (core.lesson.Reveal). The
        same step revealed by a whole class runs once: results are shared through `core.cache`, keyed by
        the check, its arguments and the lab's values."""
        if check not in TOUR_CHECKS:
            raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")
        args, values = dict(args or {}), dict(values or {})
        key = ("prompt-tour", check, json.dumps([args, values], sort_keys=True, default=str))
        return cache.once(key, lambda: getattr(self, TOUR_CHECKS[check])(args, values))

    def _side_by_side(self, values: dict, techniques) -> Comparison:
        v = values
        return self.answer(v.get("model"), v.get("url", ""), v.get("server_model", ""), v.get("task"), v.get("question"),
                           v.get("gold", ""), v.get("system", ""), None, list(techniques), v.get("n"),
                           v.get("temperature"), v.get("top_p"), v.get("max_tokens"), v.get("seed"))

    def _check_techniques_right(self, args: dict, values: dict):
        """Which single-answer techniques read the expected answer (greedy, as Ask shows them)."""
        from playground.core.lesson import Reveal

        if not str(values.get("gold", "")).strip():
            raise InputError("This step needs an expected answer: type it under 'Expected answer'.")
        techniques = validate.choices("Techniques", args.get("techniques", [*DIRECT, *REASONED]), [*DIRECT, *REASONED])
        c = self._side_by_side(values, techniques)
        right = {a.technique for a in c.done if a.correct == "yes"}
        direct, reasoned = bool(right & set(DIRECT)), bool(right & set(REASONED))
        ch = args["choices"]             # only reasoning, only direct, both kinds, none
        answer = ch[2] if direct and reasoned else ch[0] if reasoned else ch[1] if direct else ch[3]
        lines = [f"- **{a.technique}** read `{a.vote.winner}` ({'right' if a.correct == 'yes' else 'wrong'}): "
                 f"*{_snippet(a.generation.texts[0][0])}*" for a in c.done]
        return Reveal(answer, f"Greedy answers of {c.backend} (expected `{c.gold}`):\n\n" + "\n".join(lines))

    def _check_format(self, args: dict, values: dict):
        """How many answers can be read (parse rate) under two techniques, on the first items of a bundled set."""
        from playground.core.lesson import Reveal

        name = validate.choice("Set", args.get("set", "sentiment"), list(evaluate.SETS))
        k = validate.integer("Items", args.get("items", FORMAT_ITEMS[2]), *FORMAT_ITEMS[:2])
        first, second = validate.choices("Techniques", args.get("techniques", list(DIRECT)), prompts.TECHNIQUES)[:2]
        rows, task = evaluate.load_set(name)[:k], prompts.TASKS[name]
        backend = self._backend(values.get("model"), values.get("url", ""), values.get("server_model", ""))
        found = {}
        for tech in (first, second):
            *_, r = evaluate.run(backend, task, rows, tech)
            got = [it["answers"][0] for it in r["items"]]
            found[tech] = dict(readable=sum(g is not None for g in got), accuracy=r["accuracy"],
                               bare=sum(_bare(it["completions"][0], task) for it in r["items"]),
                               example=r["items"][0]["completions"][0])
        a, b = found[first]["readable"], found[second]["readable"]
        ch = args["choices"]             # more readable, the same, fewer
        answer = ch[0] if b > a else ch[1] if b == a else ch[2]
        lines = [f"- **{t}**: an answer can be read in {f['readable']} of {k}; {f['bare']} of {k} are the answer "
                 f"alone; {f['accuracy']:.0%} right. First item: *{_snippet(f['example'])}*" for t, f in found.items()]
        return Reveal(answer, f"The first {k} items of the bundled {name} set, greedy, {backend.name}:\n\n"
                              + "\n".join(lines))

    def _check_vote(self, args: dict, values: dict):
        """Self-consistency's vote against the greedy answer of the same prompt."""
        from playground.core.lesson import Reveal

        c = self._side_by_side(values, [GREEDY_TWIN, "self-consistency"])
        greedy, sc = c.done
        counts = ", ".join(f"`{k}` x{n}" for k, n in sc.vote.counts.items()) or "none readable"
        ch = args["choices"]             # the same answer, a different answer
        answer = ch[0] if sc.vote.winner == greedy.vote.winner else ch[1]
        gold = f" Expected: `{c.gold}`." if c.gold else ""
        return Reveal(answer, f"Greedy {GREEDY_TWIN}: `{greedy.vote.winner or 'no answer read'}`. Self-consistency, N = {c.n} paths at "
                              f"T = {c.temperature:g}, top-p = {c.top_p:g}: {counts}"
                              f"{f', {sc.vote.unreadable} unreadable' if sc.vote.unreadable else ''} -> "
                              f"`{sc.vote.winner or 'no answer read'}` (agreement {sc.vote.agreement:.0%}).{gold}")

    def _check_twice(self, args: dict, values: dict):
        """The same prompt decoded twice, with two seeds, at the sampling view's temperature."""
        from playground.core.lesson import Reveal

        temperature, top_k, top_p = self._filters(values.get("s_temp"), values.get("s_topk"), values.get("s_topp"))
        tokens = validate.integer("Max new tokens", values.get("s_tokens"), 1, MAX_NEW_TOKENS)
        seeds = [validate.seed(s) for s in args.get("seeds", [0, 1])][:2]
        backend, chat = self._sampling_prompt(values.get("model"), values.get("task"), values.get("question"),
                                              values.get("system", ""), values.get("s_tech"))
        texts = [backend.generate([chat], GenConfig(temperature=temperature, top_k=top_k, top_p=top_p,
                                                    max_new_tokens=tokens, seed=s)).texts[0][0] for s in seeds]
        ch = args["choices"]             # the same, different
        answer = ch[0] if texts[0] == texts[1] else ch[1]
        return Reveal(answer, f"T = {temperature:g}, {tokens} new tokens at most. Seed {seeds[0]}: *{_snippet(texts[0])}*"
                              f"\n\nSeed {seeds[1]}: *{_snippet(texts[1])}*")

    def _check_kept(self, args: dict, values: dict):
        """How many tokens can be drawn next at a low and a high temperature, under the view's top-k / top-p."""
        from playground.core.lesson import Reveal

        low = validate.number("Low temperature", args.get("low", 0.3), *TEMPERATURE)
        high = validate.number("High temperature", args.get("high", 1.5), *TEMPERATURE)
        backend, chat = self._sampling_prompt(values.get("model"), values.get("task"), values.get("question"),
                                              values.get("system", ""), values.get("s_tech"))
        logits = backend.next_token_logits(backend.render(chat))
        lo, hi = (distribution(logits, backend.tokenizer, t, values.get("s_topk"), values.get("s_topp"))
                  for t in (low, high))
        ch = args["choices"]             # grows, stays, shrinks
        answer = ch[0] if hi.kept > lo.kept else ch[1] if hi.kept == lo.kept else ch[2]
        return Reveal(answer, f"Top-k = {hi.top_k or 'off'}, top-p = {hi.top_p:g}: at T = {low:g}, {lo.kept} token"
                              f"{'s' if lo.kept != 1 else ''} can be drawn (the likeliest, *{lo.tokens[0]}*, has "
                              f"{lo.filtered_probs[0]:.0%}); at T = {high:g}, {hi.kept} (the likeliest has "
                              f"{hi.filtered_probs[0]:.0%}).")

    def _check_json(self, args: dict, values: dict):
        """Does the structured-output answer parse, with every key and type?"""
        from playground.core.lesson import Reveal

        r = self.extract_json(values.get("model"), values.get("url", ""), values.get("server_model", ""),
                              values.get("json_text"), values.get("system", ""), values.get("json_tokens"),
                              values.get("seed"))
        ch = args["choices"]             # valid with every key, JSON but wrong keys / types, no JSON object
        answer = ch[0] if r.check.ok else ch[1] if r.check.value is not None else ch[2]
        raw = f"\n\n```text\n{r.raw.strip()}\n```" if r.raw.strip() else " The completion is empty."
        return Reveal(answer, f"The parser on the raw completion: {r.check.error}.{raw}")

    # ---- Home and the benchmarks --------------------------------------------------------------

    def speed_probe(self) -> dict:
        """One next-token distribution of the default model on the juggler question (median seconds), the
        whole prompt read each time (no kept prefix)."""
        backend = self._local_backend(self.model_choices()[0])
        text = backend.render(prompts.build("zero-shot", prompts.ARITHMETIC, prompts.PRESETS[SPEED_PRESET]["question"]))
        return {"family": "LLM", "what": f"next-token distribution, {backend.name}",
                "seconds": timing.median_seconds(lambda: backend.next_token_logits(text, reuse=False))}

    def load_calls(self) -> list:
        q = prompts.PRESETS[SPEED_PRESET]["question"]
        return [("prompt_next_token", [self.model_choices()[0], "arithmetic", q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0])]
