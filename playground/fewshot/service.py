"""What each action of the Few-shot (MAML) lab does, with no UI: validate the raw arguments
(core.validate's one policy), adapt the three bundled initialisations to a task, return plain data.

Checkpoints (assets/fewshot, written by `demos/train_fewshot.py`): `maml` (second-order MAML),
`fomaml` (first-order MAML) and `pretrained` (one network regressed on all tasks jointly, the paper's
baseline). Each card holds its recipe, the step size it adapts with and its held-out MSE after each
gradient step; every figure the tab shows about them is read from there.

A task is either a wave of the family (amplitude and phase chosen, K support points drawn from it with
a seed), so the query loss against the true curve is known, or points the learner typed (at most
`MAX_POINTS`), for which only the loss on those points exists. Adaptation is `STEPS` plain gradient
steps on the support points from each initialisation, on a network this small a matter of milliseconds
(`speed_probe` measures it), so every action runs on the CPU, whatever the device (nothing to gain from
a host-to-GPU round trip, nothing to spend on ZeroGPU).

The classroom layer: a lesson link names the controls by `CONTROLS` and carries typed points as text
(`PointsParam`, checked like the table); `tour_check` answers the steps of assets/tours/fewshot.json by
adapting the bundled models at reveal time, with its thresholds (`CLOSE`, `WORSE`) named here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.core import cache, checkpoint, lesson, paths, timing, validate
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings
from playground.fewshot import model as M
from playground.fewshot import tasks

ROLES = ("maml", "fomaml", "pretrained")    # checkpoint names, in the order they are shown
STEPS = 10                                  # gradient steps shown: 0 (the initialisation) to STEPS
K_RANGE = (1, 20)                           # support points drawn from a wave
MAX_POINTS = 20                             # typed points (rows of the table)
Y_LIMIT = 10.0                              # typed y is clamped into [-Y_LIMIT, Y_LIMIT]
DEFAULT = {"amplitude": 3.0, "phase": 1.0, "k": 5, "seed": 0, "step": 1}
DIVERGED = 100.0                            # a support loss this many times its start (or 1) means the steps diverged
PROBE_SECONDS = 0.3
# A lesson link's names for the controls (link name -> DEFAULT key; "step" is taken by a link's tour step,
# so the step shown travels as "at"); the typed points travel as POINTS, text of x:y pairs separated by
# commas (at most MAX_POINTS pairs, each checked like a table row).
AT = "at"
CONTROLS = {"amp": "amplitude", "phase": "phase", "k": "k", "seed": "seed", AT: "step"}
POINTS = "pts"
XY, SEP = ":", ","
# Tour checks: two errors within this fraction of each other are "about the same"; "several times worse"
# means at least WORSE times; `more_points` averages over DRAWS draws of the support points (seeds 0, 1, ...)
# of the wave on screen, `first_order` over DRAWS waves of the family drawn by FAMILY_SEED.
CLOSE = 0.25
WORSE = 2.0
DRAWS = 50
FAMILY_SEED = 0


# --- plain results ---------------------------------------------------------------------------

@dataclass
class Task:
    x: list[float]                 # (K,) support inputs
    y: list[float]                 # (K,)
    amplitude: float | None = None  # None: points typed by the learner (no true curve)
    phase: float | None = None
    seed: int | None = None


@dataclass
class Run:
    """One initialisation adapted to the task: everything at steps 0..STEPS."""
    role: str
    label: str
    alpha: float                   # its fine-tuning step size (card)
    curves: np.ndarray             # (STEPS + 1, G) f_theta_k on the grid
    support_loss: list[float]      # (STEPS + 1,) MSE on the support points
    query_loss: list[float] | None  # (STEPS + 1,) MSE against the true curve on the grid; None for typed points
    diverged: int | None = None    # the first step at which gradient descent blew up (from there on: NaN)


@dataclass
class Adaptation:
    """Per-user state (kept in gr.State): the task, each initialisation's path, and the step shown."""
    task: Task
    grid: np.ndarray               # (G,)
    truth: np.ndarray | None       # (G,) the true wave, None for typed points
    runs: list[Run]
    step: int

    @property
    def steps(self) -> int:
        return len(self.runs[0].support_loss) - 1


@dataclass
class Loaded:
    model: M.SineMLP
    card: dict
    alpha: float
    label: str


@dataclass
class ModelInfo:
    role: str
    label: str
    alpha: float                   # fine-tuning step size
    card: dict


@dataclass
class Info:
    """What the tab shows about the bundled models, from their cards (no model is loaded)."""
    models: list[ModelInfo]
    missing: list[str]             # roles without a checkpoint
    source: str                    # the folder the cards were read from


def _cut_divergence(run: Run) -> Run:
    """Typed points far from the family can make a step of size alpha overshoot, and the loss then grows
    without bound. From the first step whose support loss is not finite or exceeds DIVERGED times its
    start (or 1, if that is larger), the run holds NaN (a gap in the plots) and `diverged` says where."""
    limit = DIVERGED * max(run.support_loss[0], 1.0)
    bad = next((i for i, v in enumerate(run.support_loss) if not math.isfinite(v) or v > limit), None)
    if bad is not None:
        run.curves = run.curves.copy()
        run.curves[bad:] = np.nan
        run.support_loss = run.support_loss[:bad] + [math.nan] * (len(run.support_loss) - bad)
        if run.query_loss is not None:
            run.query_loss = run.query_loss[:bad] + [math.nan] * (len(run.query_loss) - bad)
        run.diverged = bad
    return run


def points_text(x: list[float], y: list[float]) -> str:
    """Points as the text a lesson link carries: "x:y,x:y,..." (shortest form of each number)."""
    return SEP.join(f"{a:g}{XY}{b:g}" for a, b in zip(x, y))


def _text_rows(text) -> list[list[str]]:
    """"x:y,x:y" -> rows [[x, y], ...] of strings (checked as table rows afterwards)."""
    text = validate.text("Points text", text, max_chars=lesson.MAX_TEXT, allow_empty=True)
    rows = []
    for i, pair in enumerate((p for p in text.split(SEP) if p.strip()), 1):
        cells = pair.split(XY)
        if len(cells) != 2:
            raise InputError(f"Points text: point {i} ({pair.strip()[:20]!r}) must be written x{XY}y, "
                             f"the points separated by '{SEP}'.")
        rows.append(cells)
    return rows


@dataclass(frozen=True)
class PointsParam(lesson.Param):
    """How the typed points travel in a link: the text checked row by row like the table (x and y
    clamped, at most MAX_POINTS), written back in its shortest form; empty means no typed points."""

    def check(self, value: Any) -> str:
        rows = _text_rows(value)
        if not rows:
            return ""
        checked = Service._rows(rows)
        return points_text([r[0] for r in checked], [r[1] for r in checked])


POINTS_PARAM = PointsParam(POINTS, "text")


def _finite(v: float) -> float:
    """A loss for comparing: a diverged (NaN) step counts as infinitely bad."""
    return v if math.isfinite(v) else math.inf


def _fmt(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "diverged"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _err(run: Run, step: int) -> float:
    """The error a check compares: the query MSE when the true wave is known, else the MSE on the points."""
    return (run.query_loss if run.query_loss is not None else run.support_loss)[step]


def _task_words(a: Adaptation) -> str:
    t = a.task
    if t.amplitude is None:
        return f"the {len(t.x)} typed points"
    return f"the wave A = {t.amplitude:.2f}, φ = {t.phase:.2f} with K = {len(t.x)} points (seed {t.seed})"


# --- the service -----------------------------------------------------------------------------

class Service:
    def __init__(self, settings: Settings, assets: str | Path | None = None):
        """`assets`: another folder of checkpoints (tests); default the bundled assets/fewshot."""
        self.settings = settings
        self.assets = Path(assets) if assets is not None else paths.assets("fewshot")

    # --- checkpoints ---

    def _shown(self, p: Path) -> str:
        return str(p.relative_to(paths.ROOT)) if p.is_relative_to(paths.ROOT) else str(p)

    def _present(self, role: str) -> bool:
        return all((self.assets / f"{role}{ext}").exists() for ext in (".safetensors", ".json"))

    def loaded(self, role: str) -> Loaded:
        """A bundled initialisation, loaded on first use and shared by every session."""
        path = self.assets / role
        if not self._present(role):
            raise Unavailable(f"The checkpoint {self._shown(path)} is missing; train it with "
                              f"`python -m demos.train_fewshot --only {role}` (a few CPU minutes; see its --help).")

        def load() -> Loaded:
            model, card = checkpoint.load(path, device="cpu")
            return Loaded(model, card, float(card["adapt"]["inner_lr"]), card.get("label", role))

        return cache.once(("fewshot", str(path)), load)

    def info(self) -> Info:
        models, missing = [], []
        for role in ROLES:
            if not self._present(role):
                missing.append(role)
                continue
            card = checkpoint.read_card(self.assets / role)
            models.append(ModelInfo(role, card.get("label", role), float(card["adapt"]["inner_lr"]), card))
        return Info(models, missing, self._shown(self.assets) + "/")

    # --- validation ---

    @staticmethod
    def _step(step) -> int:
        return validate.integer("Step shown", step, 0, STEPS)

    @staticmethod
    def _state(state) -> Adaptation:
        if not isinstance(state, Adaptation):
            raise InputError("No task yet: set the amplitude and phase (or type points and press Adapt) first.")
        return state

    @staticmethod
    def _rows(points) -> list[tuple[float, float]]:
        """The points table: a Dataframe payload {"data": [[x, y], ...]} or a plain list of [x, y] rows.
        Rows left wholly blank are skipped; x is clamped into the family's range, y into +-Y_LIMIT."""
        if isinstance(points, dict):
            points = points.get("data")
        if not isinstance(points, (list, tuple)):
            raise InputError("Points must be a table of rows [x, y].")
        rows = []
        for i, row in enumerate(points, 1):
            if not isinstance(row, (list, tuple)) or len(row) != 2:
                raise InputError(f"Points row {i} must have two cells, x and y.")
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in row):
                continue
            if len(rows) == MAX_POINTS:
                raise InputError(f"Too many points: type at most {MAX_POINTS} rows.")
            rows.append((validate.number(f"Points row {i}: x", row[0], *tasks.X_RANGE),
                         validate.number(f"Points row {i}: y", row[1], -Y_LIMIT, Y_LIMIT)))
        if not rows:
            raise InputError("Points: type at least one row with an x and a y.")
        return rows

    # --- adaptation ---

    def _adapt(self, task: Task, step: int) -> Adaptation:
        models = [self.loaded(role) for role in ROLES]
        x = torch.tensor(task.x, dtype=torch.float32).view(1, -1, 1)             # (1, K, 1)
        y = torch.tensor(task.y, dtype=torch.float32).view(1, -1, 1)
        g = tasks.grid()                                                          # (G,)
        truth = None
        if task.amplitude is not None:
            truth = tasks.sine(torch.tensor([task.amplitude]), torch.tensor([task.phase]), g)[0]   # (G,)
        params = [m.model.params() for m in models]
        stacked = {k: torch.stack([p[k].detach() for p in params]) for k in params[0]}      # (roles, ...) each
        alphas = torch.tensor([m.alpha for m in models])
        curves, support = M.finetune(stacked, x, y, alphas, STEPS, g.view(1, -1, 1))  # every initialisation at once
        curves = curves[..., 0]                                                   # (STEPS + 1, roles, G)
        runs = []
        for i, (role, m) in enumerate(zip(ROLES, models)):
            query = None if truth is None else [float(v) for v in (curves[:, i] - truth).pow(2).mean(1)]
            runs.append(_cut_divergence(Run(role, m.label, m.alpha, curves[:, i].numpy(),
                                            [float(v) for v in support[:, i]], query)))
        return Adaptation(task, g.numpy(), None if truth is None else truth.numpy(), runs, step)

    def sine_task(self, amplitude=DEFAULT["amplitude"], phase=DEFAULT["phase"], k=DEFAULT["k"],
                  seed=DEFAULT["seed"], step=DEFAULT["step"]) -> Adaptation:
        """A wave of the family, K support points drawn from it (uniform x, by the seed), adapted."""
        amp = validate.number("Amplitude", amplitude, *tasks.AMPLITUDE)
        ph = validate.number("Phase", phase, *tasks.PHASE)
        k = validate.integer("K (support points)", k, *K_RANGE)
        seed = validate.seed(seed)
        return self._adapt(self._wave(amp, ph, k, seed), self._step(step))

    @staticmethod
    def _wave(amplitude: float, phase: float, k: int, seed: int) -> Task:
        """K points of the wave A sin(x - phi), x uniform by the seed (no range check: callers validate)."""
        x = tasks.uniform((k,), tasks.X_RANGE, torch.Generator().manual_seed(seed))
        y = tasks.sine(torch.tensor([float(amplitude)]), torch.tensor([float(phase)]), x)[0]
        return Task(x.tolist(), y.tolist(), float(amplitude), float(phase), seed)

    def new_points(self, amplitude, phase, k, seed, step) -> Adaptation:
        """The same wave with other support points (the next seed)."""
        return self.sine_task(amplitude, phase, k, (validate.seed(seed) + 1) % (validate.MAX_SEED + 1), step)

    def points_task(self, points, step=DEFAULT["step"]) -> Adaptation:
        """Points the learner typed (rows [x, y]) as the support set; no true curve."""
        rows = self._rows(points)
        step = self._step(step)
        return self._adapt(Task([r[0] for r in rows], [r[1] for r in rows]), step)

    def points_text_task(self, text, step=DEFAULT["step"]) -> Adaptation:
        """Typed points written as text, "x:y,x:y,..." (what a lesson link carries), as the support set."""
        return self.points_task(_text_rows(text), step)

    def current(self, state) -> Adaptation:
        """The adaptation on screen (for an export)."""
        return self._state(state)

    def scrub(self, state, step) -> Adaptation:
        """Show another step of the adaptation already computed."""
        return replace(self._state(state), step=self._step(step))

    def play(self, state) -> Adaptation:
        """Start playing the adaptation from step 0."""
        return replace(self._state(state), step=0)

    def advance(self, state) -> Adaptation:
        """One frame of the play: the next step (it stays at the last)."""
        a = self._state(state)
        return replace(a, step=min(a.step + 1, a.steps))

    # --- the guided tour's checks (assets/tours/fewshot.json): answers measured on the live models ---

    def shown_now(self, values: dict | None) -> Adaptation:
        """What a lesson's control values show: the typed points when there are any, else the sliders' wave."""
        v = values or {}
        if str(v.get(POINTS) or "").strip():
            return self.points_text_task(v[POINTS], v.get(AT, DEFAULT["step"]))
        return self.sine_task(*(v.get(name, DEFAULT[key]) for name, key in CONTROLS.items()))

    def _batch(self, role: str, waves: list[Task], step: int) -> tuple[float, int]:
        """Query MSE after `step` steps from `role`, averaged over tasks of the family adapted as one batch
        (each its own copy of theta), and how many of them diverged (left out of the mean)."""
        m, n = self.loaded(role), len(waves)
        x = torch.tensor([w.x for w in waves]).unsqueeze(-1)                              # (T, K, 1)
        y = torch.tensor([w.y for w in waves]).unsqueeze(-1)
        g = tasks.grid()
        truth = tasks.sine(torch.tensor([w.amplitude for w in waves]), torch.tensor([w.phase for w in waves]), g)  # (T, G)
        curves, _ = M.finetune(M.per_task(m.model.params(), n), x, y, m.alpha, step, g.view(1, -1, 1))
        q = (curves[-1, ..., 0] - truth).pow(2).mean(-1)                                   # (T,)
        ok = q[torch.isfinite(q)]
        return (float(ok.mean()) if len(ok) else math.inf), n - len(ok)

    def _family(self, k: int) -> list[Task]:
        """DRAWS waves of the family (amplitude and phase drawn by FAMILY_SEED), K points each (seeds 0, 1, ...)."""
        g = torch.Generator().manual_seed(FAMILY_SEED)
        amps, phases = tasks.uniform((DRAWS,), tasks.AMPLITUDE, g), tasks.uniform((DRAWS,), tasks.PHASE, g)
        return [self._wave(float(a), float(p), k, i) for i, (a, p) in enumerate(zip(amps, phases))]

    def tour_check(self, check: str, args: dict, values: dict) -> lesson.Reveal:
        """A tour step's answer, measured now on the bundled models (core.lesson.Reveal). `args["choices"]`
        maps each outcome to the step's wording; the task is the one on screen unless the step names one."""
        args = args or {}
        choices = args.get("choices") or {}

        def answer(outcome: str) -> str:
            if outcome not in choices:
                raise InputError(f"Tour: this step names no answer for the outcome {outcome!r}.")
            return choices[outcome]

        step = validate.integer("Tour: step", args.get("step", 1), 0, STEPS)
        if check in ("best_after", "catch_up", "first_order"):
            a = self.shown_now(values)
            by, what = {r.role: r for r in a.runs}, _task_words(a)
            metric = "query MSE" if a.truth is not None else "MSE on the typed points"
            if check == "best_after":
                errs = {r.role: _err(r, step) for r in a.runs}
                best = min(errs, key=lambda role: _finite(errs[role]))
                return lesson.Reveal(answer(best), f"On {what}, {metric} after {_plural(step, 'gradient step')}: "
                                     + "; ".join(f"{r.label} **{_fmt(errs[r.role])}**" for r in a.runs) + ".")
            if check == "catch_up":
                late = validate.integer("Tour: late step", args.get("late", STEPS), 0, STEPS)
                mine, base = _err(by["maml"], step), [_err(by["pretrained"], s) for s in range(a.steps + 1)]
                reached = next((s for s, e in enumerate(base) if _finite(e) <= mine), None)
                return lesson.Reveal(answer("yes" if _finite(base[late]) <= mine else "no"), (
                    f"On {what}, {metric}: {by['pretrained'].label} after {_plural(late, 'step')} "
                    f"**{_fmt(base[late])}**, {by['maml'].label} after {_plural(step, 'step')} **{_fmt(mine)}**. "
                    + (f"The baseline first gets there at step {reached}." if reached is not None else
                       f"In {_plural(a.steps, 'step')} the baseline never gets there.")))
            k = len(a.task.x)
            fam = {role: self._batch(role, self._family(k), step) for role in ("fomaml", "maml")}
            ratio = fam["fomaml"][0] / fam["maml"][0]
            outcome = "same" if max(ratio, 1 / ratio) <= 1 + CLOSE else "worse" if ratio > 1 else "better"
            return lesson.Reveal(answer(outcome), (
                f"Over {DRAWS} waves of the family with K = {k} points, mean query MSE after {_plural(step, 'step')}: "
                + "; ".join(f"{by[role].label} **{m:.3f}**" + (f" ({n} diverged, left out)" if n else "")
                            for role, (m, n) in fam.items())
                + f" (ratio {ratio:.2f}; within {CLOSE:.0%} counts as about the same). On {what} alone, {metric}: "
                f"{_fmt(_err(by['fomaml'], step))} against {_fmt(_err(by['maml'], step))}."))
        if check == "more_points":
            v = values or {}
            amp = validate.number("Amplitude", v.get("amp", DEFAULT["amplitude"]), *tasks.AMPLITUDE)
            ph = validate.number("Phase", v.get("phase", DEFAULT["phase"]), *tasks.PHASE)
            ks = [validate.integer("Tour: K", kk, *K_RANGE) for kk in args.get("ks", (5, 10))][:2]
            means = {kk: self._batch("maml", [self._wave(amp, ph, kk, d) for d in range(DRAWS)], step) for kk in ks}
            ratio = means[ks[1]][0] / means[ks[0]][0]
            outcome = "drops" if ratio < 1 / (1 + CLOSE) else "grows" if ratio > 1 + CLOSE else "same"
            label = self.loaded("maml").label
            return lesson.Reveal(answer(outcome), (
                f"{label} on the wave A = {amp:.2f}, φ = {ph:.2f}, query MSE after {_plural(step, 'step')}, "
                f"mean over {DRAWS} draws of the points: " + "; ".join(
                    f"K = {kk} **{m:.3f}**" + (f" ({n} diverged, left out)" if n else "") for kk, (m, n) in means.items())
                + f" (ratio {ratio:.2f})."))
        if check in ("clamped", "outside"):
            v = values or {}
            asked = validate.number("Tour: amplitude", args.get("amplitude"), 0, Y_LIMIT)
            ph = validate.number("Phase", args.get("phase", v.get("phase", DEFAULT["phase"])), *tasks.PHASE)
            kk = validate.integer("K", args.get("k", v.get("k", DEFAULT["k"])), *K_RANGE)
            seed = validate.seed(args.get("seed", v.get("seed", DEFAULT["seed"])))
            if check == "clamped":
                a = self.sine_task(asked, ph, kk, seed, step)
                got, maml = a.task.amplitude, a.runs[0]
                return lesson.Reveal(answer("clamped" if got != asked else "asked"), (
                    f"Asked for A = {asked:g}; the lab ran A = **{got:g}**: like every number here it is clamped into "
                    f"its range, the family's A from {tasks.AMPLITUDE[0]:g} to {tasks.AMPLITUDE[1]:g}. On that wave "
                    f"{maml.label}'s query MSE after {_plural(step, 'step')} is {_fmt(maml.query_loss[step])}."))
            edge = tasks.AMPLITUDE[1]
            far, near = (self._adapt(self._wave(amp, ph, kk, seed), step) for amp in (asked, edge))
            rel = {(w, r.role): _finite(r.query_loss[step]) / float(np.mean(a.truth ** 2))
                   for w, a in (("far", far), ("near", near)) for r in a.runs}
            ratio = rel["far", "maml"] / rel["near", "maml"]
            return lesson.Reveal(answer("worse" if ratio >= WORSE else "same"), (
                f"Query MSE after {_plural(step, 'step')} as a share of the wave's mean square (so that waves of "
                f"different size compare), K = {kk} points at the same x (seed {seed}): "
                + "; ".join(f"{r.label}: A = {asked:g} **{rel['far', r.role]:.1%}**, A = {edge:g} "
                            f"**{rel['near', r.role]:.1%}**" for r in far.runs)
                + f". {far.runs[0].label} is {ratio:.1f} times worse outside the family "
                  f"({WORSE:g} times or more counts as several times)."))
        raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")

    # --- for the Home tab, the load script and the benchmarks ---

    def speed_probe(self) -> dict:
        """Median time of a whole default adaptation: every initialisation, STEPS steps each."""
        self.sine_task()
        return {"family": "MAML", "what": f"{len(ROLES)} x {STEPS} adaptation steps",
                "seconds": timing.median_seconds(self.sine_task, min_run_time=PROBE_SECONDS)}

    def load_calls(self) -> list:
        d = DEFAULT
        return [("fewshot_sine", [d["amplitude"], d["phase"], d["k"], d["seed"], d["step"]], 3),
                ("fewshot_points", [{"headers": ["x", "y"], "data": [[-4.0, 1.0], [-1.0, -2.0], [2.0, 2.5]]},
                                    d["step"]])]            # the API's table payload, as a client sends it
