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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from playground.core import cache, checkpoint, paths, timing, validate
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
        models = {role: self.loaded(role) for role in ROLES}
        x = torch.tensor(task.x, dtype=torch.float32).view(1, -1, 1)             # (1, K, 1)
        y = torch.tensor(task.y, dtype=torch.float32).view(1, -1, 1)
        g = tasks.grid()                                                          # (G,)
        truth = None
        if task.amplitude is not None:
            truth = tasks.sine(torch.tensor([task.amplitude]), torch.tensor([task.phase]), g)[0]   # (G,)
        runs = []
        for role, m in models.items():
            path = M.finetune(M.per_task(m.model.params(), 1), x, y, m.alpha, STEPS)
            with torch.no_grad():
                curves = torch.cat([M.functional(p, g.view(1, -1, 1))[..., 0] for p in path])       # (STEPS + 1, G)
                support = [float(M.mse(M.functional(p, x), y)[0]) for p in path]
                query = None if truth is None else [float(v) for v in (curves - truth).pow(2).mean(1)]
            runs.append(_cut_divergence(Run(role, m.label, m.alpha, curves.numpy(), support, query)))
        return Adaptation(task, g.numpy(), None if truth is None else truth.numpy(), runs, step)

    def sine_task(self, amplitude=DEFAULT["amplitude"], phase=DEFAULT["phase"], k=DEFAULT["k"],
                  seed=DEFAULT["seed"], step=DEFAULT["step"]) -> Adaptation:
        """A wave of the family, K support points drawn from it (uniform x, by the seed), adapted."""
        amp = validate.number("Amplitude", amplitude, *tasks.AMPLITUDE)
        ph = validate.number("Phase", phase, *tasks.PHASE)
        k = validate.integer("K (support points)", k, *K_RANGE)
        seed = validate.seed(seed)
        step = self._step(step)
        x = tasks.uniform((k,), tasks.X_RANGE, torch.Generator().manual_seed(seed))
        y = tasks.sine(torch.tensor([amp]), torch.tensor([ph]), x)[0]
        return self._adapt(Task(x.tolist(), y.tolist(), amp, ph, seed), step)

    def new_points(self, amplitude, phase, k, seed, step) -> Adaptation:
        """The same wave with other support points (the next seed)."""
        return self.sine_task(amplitude, phase, k, (validate.seed(seed) + 1) % (validate.MAX_SEED + 1), step)

    def points_task(self, points, step=DEFAULT["step"]) -> Adaptation:
        """Points the learner typed (rows [x, y]) as the support set; no true curve."""
        rows = self._rows(points)
        step = self._step(step)
        return self._adapt(Task([r[0] for r in rows], [r[1] for r in rows]), step)

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

    # --- for the Home tab, the load script and the benchmarks ---

    def speed_probe(self) -> dict:
        """Median time of a whole default adaptation: every initialisation, STEPS steps each."""
        self.sine_task()
        return {"family": "MAML", "what": f"{len(ROLES)} x {STEPS} adaptation steps",
                "seconds": timing.median_seconds(self.sine_task, min_run_time=PROBE_SECONDS)}

    def load_calls(self) -> list:
        d = DEFAULT
        return [("fewshot_sine", [d["amplitude"], d["phase"], d["k"], d["seed"], d["step"]], 3),
                ("fewshot_points", [[[-4.0, 1.0], [-1.0, -2.0], [2.0, 2.5]], d["step"]])]
