"""What each action of the VAE lab does, with no UI: validate the raw arguments (core.validate's one
policy), run the bundled models, return plain data (image tensors in [0, 1], numbers, small dataclasses).

Checkpoints: per data set a main model (beta = 1, the ELBO), a beta > 1 model, a model with a
`MAP_DIM`-D latent for the latent map, and the MLP peer, all written by `demos/train_vae.py` into
assets/vae (names from `checkpoint_name`); and a VQ-VAE (`vq_name`, written by `demos/train_vqvae.py`).
Every figure shown about them (latent size, beta, held-out ELBO, KL per dimension, data set size, the
VQ-VAE's codebook and held-out terms) is read from their cards.

These models run on the CPU everywhere, even where a GPU is present: one decoder pass (`speed_probe`
measures it) costs less than a host-to-GPU round trip, so the live slider endpoint can skip the queue
(no GPU to share, nothing to wait for; on ZeroGPU nothing needs spaces.GPU).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from playground.core import cache, checkpoint, data, hub, paths, timing, validate
from playground.core.batch import Batcher
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings
from playground.vae.latent import lerp, quantile_grid, slerp
from playground.vae.losses import kl_per_dim, recon_nll, reparameterise
from playground.vae.model import VAEConfig
from playground.vae.vqvae import VQConfig, perplexity, vq_terms

# Data set key -> its name and source in the UI label; the label adds the image count (train + test)
# from the main model's card when the source is named: "Digits (opencv, N)".
DATASETS = {"fashion": ("Fashion-MNIST", None), "digits": ("Digits", "opencv")}
CLASSES = {"fashion": data.FASHION_CLASSES, "digits": data.DIGIT_CLASSES}
DEFAULT = "fashion"

Z_LIMIT = 4.0           # latents sent through the API are clamped into [-Z_LIMIT, Z_LIMIT]
SLIDER_MAX = 3.0        # the sliders span [-SLIDER_MAX, SLIDER_MAX]
MAP_DIM = 2             # the latent map plots z[0] against z[1]
N_SAMPLES = 6           # reparameterised samples shown per encoded image
TERM_SAMPLES = 16       # draws of z ~ q(z|x) behind an image's reconstruction term
BETA_IMAGES = 8         # test images (and prior draws) in the beta comparison
STEPS = (3, 16, 8)      # interpolation steps: min, max, default
GRID = (4, 20, 12)      # manifold grid cells per side: min, max, default
GIF_PATHS = ("spherical", "linear")
PROBE_SECONDS = 0.3     # speed probe: torch.utils.benchmark's minimum run time
VISIBLE = 0.02          # tour: a mean absolute pixel change below this (of 1) is "nothing you can see"
CONFIDENT = 0.5         # tour: a prior sample counts as recognisable when the judge gives its class >= this
USAGE_IMAGES = 1000     # VQ-VAE: the codebook usage histogram is measured live on this many test images

# A fixed list of test images per data set (three of each class, classes in order), so the pickers
# need no data at start-up. Indices into data.load(key, "test"); the class of PICKS[k][i] is i % 10.
PICKS = {
    "fashion": [19, 2, 1, 13, 6, 8, 4, 9, 18, 0, 27, 3, 16, 29, 10, 11, 7, 12, 30, 23,
                35, 5, 20, 32, 14, 21, 26, 22, 31, 28],
    "digits": [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 1, 51, 101, 151, 201, 251, 301, 351,
               401, 451, 2, 52, 102, 152, 202, 252, 302, 352, 402, 452],
}
INTERP_DEFAULTS = {"fashion": (7, 9), "digits": (1, 7)}   # pick positions of image A and image B
OBJECT_BOX = {"fashion": 26, "digits": 20}                # px of a 28 px input an upload is fitted into (MNIST: 20)


def checkpoint_name(key: str, beta: float = 1.0, latent_dim: int = VAEConfig.latent_dim) -> str:
    """The name demos/train_vae.py gives a checkpoint (the peer adds `_peer_mlp`)."""
    return f"{key}_b{beta:g}" + ("_2d" if latent_dim == MAP_DIM else "")


def vq_name(key: str) -> str:
    """The name demos/train_vqvae.py gives a data set's VQ-VAE checkpoint."""
    return f"{key}_vq"


def pick_labels(key: str) -> list[str]:
    """The picker's labels: 'test #19: T-shirt/top'."""
    return [f"test #{idx}: {CLASSES[key][i % len(CLASSES[key])]}" for i, idx in enumerate(PICKS[key])]


def prepare(img: Image.Image, key: str, size: int) -> torch.Tensor:
    """Any picture -> (1, 1, size, size) in [0, 1], light object on a dark ground like the training data:
    grey; inverted when its border is light (a drawing on white, a photo on a table); cropped to the
    object; fitted into OBJECT_BOX[key] px and centred. Raises ValueError when nothing is drawn."""
    a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0                  # (H, W)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:
        a, border = 1.0 - a, 1.0 - border
    a = np.clip(a - np.median(border), 0.0, 1.0)
    ys, xs = np.nonzero(a > 0.1)
    if len(ys) == 0:
        raise ValueError("the picture is blank: draw or upload something with a visible shape")
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    a = a / max(float(a.max()), 1e-6)
    h, w = a.shape
    s = OBJECT_BOX[key] / max(h, w)
    small = Image.fromarray((a * 255).astype(np.uint8)).resize(
        (max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(small, ((size - small.width) // 2, (size - small.height) // 2))
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)[None, None]


def _unwrap(value):
    """Events run with preprocess=False, so files arrive as FileData dicts ({"path": ...}, already
    checked by Gradio to lie in its upload cache) and a sketchpad as {"composite": FileData, ...}."""
    if isinstance(value, dict) and isinstance(value.get("composite"), dict):
        value = value["composite"]
    if isinstance(value, dict) and "composite" not in value and not value.get("path"):
        return None
    return value


# --- plain results ---------------------------------------------------------------------------

@dataclass
class Loaded:
    model: torch.nn.Module
    card: dict
    order: list[int]       # latent dimensions, most held-out KL first

    @property
    def dim(self) -> int:
        return self.model.config.latent_dim


@dataclass
class Encoding:
    """Per-user state (kept in gr.State): the image last encoded, by which data set's models."""
    key: str
    x: list[float]         # the model's input, flattened (size * size)
    mu: list[float]        # (D,)
    logvar: list[float]    # (D,)
    seed: int = 0          # of the reparameterised samples shown


@dataclass
class Sliders:
    values: list[float]    # one per slider (most-KL dimension first), rounded into the slider range
    image: torch.Tensor    # (1, H, W) the decoded z
    next_seed: int | None = None


@dataclass
class Encoded:
    x: torch.Tensor        # (1, H, W) what the model sees
    recon: torch.Tensor    # (1, H, W) decode(mu)
    samples: torch.Tensor  # (N_SAMPLES, 1, H, W) decode(mu + sigma * eps)
    mu: list[float]
    sigma: list[float]
    order: list[int]
    terms: dict            # recon, kl, neg_elbo (nats), kl_per_dim, samples
    state: Encoding


@dataclass
class MapView:
    points: np.ndarray     # (N, 2) test-set means of the map model
    labels: np.ndarray     # (N,)
    classes: list[str]
    z: tuple[float, float]
    mark: list[float] | None   # the encoded image's mean under the map model
    limit: float


@dataclass
class MapAll:
    z: tuple[float, float]
    view: MapView
    image: torch.Tensor    # (1, H, W)
    grid: torch.Tensor     # (n * n, 1, H, W)
    n: int


@dataclass
class Interpolation:
    linear: torch.Tensor     # (N, 1, H, W)
    spherical: torch.Tensor  # (N, 1, H, W)
    path: str                # which one the GIF plays


@dataclass
class BetaComparison:
    rows: torch.Tensor     # (5 * k, 1, H, W): images, recon low beta, recon high beta, prior low, prior high
    per_row: int
    betas: tuple[float, float]
    kl: tuple[list[float], list[float]]   # held-out KL per dimension of each model (cards)


@dataclass
class VQCodes:
    """Per-user state (gr.State): the test image on the VQ-VAE sub-tab and its code grid, as edited so far."""
    key: str
    index: int                  # into the test split
    codes: list[list[int]]      # (h, w) the grid now decoded
    original: list[list[int]]   # (h, w) the encoder's grid


@dataclass
class VQView:
    x: torch.Tensor             # (1, H, W) the test image
    recon: torch.Tensor         # (1, H, W) decode of the encoder's codes
    edited: torch.Tensor        # (1, H, W) decode of the grid as edited
    cell: tuple[int, int]       # the cell last chosen (row, column)
    terms: dict                 # this image's recon (nats), codebook and commitment terms, from the encoder's grid
    usage: list[int]            # held-out code counts over the first `usage_images` test images (live), (K,)
    usage_perplexity: float     # exp(-sum p log p) of those counts
    usage_images: int           # USAGE_IMAGES, or the whole test split where it is smaller
    card: dict                  # the VQ-VAE's card
    vae_card: dict | None       # the main VAE's card of the same data set (its held-out reconstruction error)
    state: VQCodes

    @property
    def changed(self) -> list[tuple[int, int]]:
        return [(r, c) for r, row in enumerate(self.state.codes) for c, k in enumerate(row)
                if k != self.state.original[r][c]]


@dataclass
class DatasetInfo:
    key: str
    label: str
    source: str                  # markdown: which models the tab runs on
    latent_dim: int | None       # of the main model
    image_size: int
    kl_per_dim: list[float]      # main model, held-out
    order: list[int]
    betas: tuple[float, float] | None
    map_dim: int | None
    picks: list[str]
    interp: tuple[str, str]
    figures: list[dict] = field(default_factory=list)


# --- the service -----------------------------------------------------------------------------

class Service:
    def __init__(self, settings: Settings, assets: str | Path | None = None):
        """`assets`: another folder of checkpoints (tests); default the bundled assets/vae."""
        self.settings = settings
        self.assets = Path(assets) if assets is not None else paths.assets("vae")
        self.roles = {key: self._roles(key) for key in DATASETS}
        self.labels = {key: self._label(key) for key in DATASETS}
        self.keys = {label: key for key, label in self.labels.items()}
        self.default = self.labels[DEFAULT]
        dims = [c["config"]["latent_dim"] for c in map(self._card, (r["main"] for r in self.roles.values())) if c]
        self.n_sliders = max(dims, default=VAEConfig.latent_dim)   # one per latent dimension
        main = self._card(self.roles[DEFAULT]["main"])
        self.image_size = main["config"]["image_size"] if main else VAEConfig.image_size

    # --- checkpoints, data ---

    def _card(self, name: str) -> dict | None:
        p = self.assets / f"{name}.json"
        return checkpoint.read_card(p) if p.exists() else None

    def _roles(self, key: str) -> dict[str, str | None]:
        main = checkpoint_name(key)
        betas = []
        for f in self.assets.glob(f"{key}_b*.json"):
            c = checkpoint.read_card(f)
            cfg = c.get("config", {})
            if c.get("model", "").endswith(":ConvVAE") and cfg.get("beta", 1) > 1 and cfg.get("latent_dim") != MAP_DIM:
                betas.append((cfg["beta"], f.stem))
        return {"main": main, "beta": max(betas)[1] if betas else None,
                "map": checkpoint_name(key, 1.0, MAP_DIM), "peer": f"{main}_peer_mlp"}

    def _label(self, key: str) -> str:
        name, source = DATASETS[key]
        if source is None:
            return name
        r = (self._card(self.roles[key]["main"]) or {}).get("recipe", {})
        count = [f"{r['train_images'] + r['test_images']:,}"] if "train_images" in r else []
        return f"{name} ({', '.join([source, *count])})"

    def _shown(self, p: Path) -> str:
        return str(p.relative_to(paths.ROOT)) if p.is_relative_to(paths.ROOT) else str(p)

    def loaded(self, key: str, role: str) -> Loaded:
        """A checkpoint of this data set, loaded on first use and shared by every session."""
        name = self.roles[key][role]
        path = self.assets / (name or f"{key}_b<beta>")
        if not name or not all((self.assets / f"{name}{ext}").exists() for ext in (".safetensors", ".json")):
            flags = {"main": "", "peer": " --peer", "map": f" --latent {MAP_DIM}", "beta": " --beta B (any B > 1)"}
            raise Unavailable(f"The checkpoint {self._shown(path)} is missing; train it with "
                              f"`python -m demos.train_vae --data {key}{flags[role]}` (see its --help).")

        def load() -> Loaded:
            model, card = checkpoint.load(path, device="cpu")
            kl = card["metrics"].get("kl_per_dim_nats") or [0.0] * model.config.latent_dim
            return Loaded(model, card, sorted(range(len(kl)), key=lambda j: -kl[j]))

        return cache.once(("vae", str(path)), load)

    def _test_set(self, key: str) -> data.Dataset:
        return cache.once(("vae", "test-set", key), lambda: data.load(key, "test", cache=self.settings.cache_dir))

    def _test_images(self, key: str, index) -> torch.Tensor:
        """(N, 1, H, W) in [0, 1]."""
        return self._test_set(key).images[index].float().div(255.0).unsqueeze(1)

    # --- validation ---

    def _key(self, dataset) -> str:
        return self.keys[validate.choice("Data set", dataset, list(self.keys))]

    def _pick(self, key: str, value, name: str) -> int:
        labels = pick_labels(key)
        return PICKS[key][labels.index(validate.choice(name, value, labels))]

    def _latent(self, name: str, value) -> float:
        return validate.number(name, value, -Z_LIMIT, Z_LIMIT)

    def _prepared(self, key: str, value, name: str) -> torch.Tensor:
        img = validate.image(_unwrap(value), mode="L", name=name)
        try:
            return prepare(img, key, self.loaded(key, "main").model.config.image_size)
        except ValueError as e:
            raise InputError(f"{name}: {e}.") from None

    @staticmethod
    def _state(state) -> Encoding:
        if not isinstance(state, Encoding):
            raise InputError("Encode an image first (pick, upload or draw one).")
        return state

    # --- model calls ---

    @staticmethod
    @torch.inference_mode()
    def _decode(m: Loaded, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> the Bernoulli means (N, 1, H, W) in [0, 1]."""
        return m.model.decode(z.to(torch.float32))

    @classmethod
    def _live(cls, m: Loaded) -> Batcher:
        """The live decode of one z (D,) -> (1, H, W), merged with other students' into one decoder pass."""
        return cache.once(("vae", "live", id(m.model)),
                          lambda: Batcher(lambda zs: list(cls._decode(m, torch.stack(zs))), name="vae decode"))

    @staticmethod
    @torch.inference_mode()
    def _encode(m: Loaded, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, H, W) -> mu, logvar (N, D)."""
        return m.model.encode(x)

    @staticmethod
    @torch.inference_mode()
    def _terms(m: Loaded, x: torch.Tensor, samples: int = TERM_SAMPLES, seed: int = 0) -> dict:
        """One image's loss terms in nats: E_q[-log p(x|z)] (`samples` draws), KL, their sum."""
        mu, logvar = m.model.encode(x)                                              # (1, D)
        eps = torch.randn((samples, mu.shape[1]), generator=torch.Generator().manual_seed(seed))
        z = reparameterise(mu.expand(samples, -1), logvar.expand(samples, -1), eps)  # (S, D)
        rec = recon_nll(m.model.decode_logits(z), x.expand(samples, -1, -1, -1)).mean()
        kl = kl_per_dim(mu, logvar)[0]                                              # (D,)
        return {"recon": float(rec), "kl": float(kl.sum()), "neg_elbo": float(rec + kl.sum()),
                "kl_per_dim": kl.tolist(), "samples": samples}

    def _samples(self, m: Loaded, state: Encoding) -> torch.Tensor:
        """N_SAMPLES reparameterised draws z = mu + sigma * eps for the encoded image, decoded."""
        mu, logvar = torch.tensor(state.mu), torch.tensor(state.logvar)
        eps = torch.randn((N_SAMPLES, mu.shape[0]), generator=torch.Generator().manual_seed(state.seed))
        return self._decode(m, reparameterise(mu.expand(N_SAMPLES, -1), logvar.expand(N_SAMPLES, -1), eps))

    # --- latent sliders ---

    def _z(self, m: Loaded, values: Sequence) -> torch.Tensor:
        """Slider i drives latent dimension m.order[i]; sliders past the model's D are ignored. -> (1, D)."""
        if not isinstance(values, (list, tuple)) or len(values) != self.n_sliders:
            raise InputError(f"Send exactly {self.n_sliders} latent slider values.")
        z = torch.zeros(1, m.dim)
        for i, v in enumerate(values):     # each named as its slider is labelled: z[j], most KL first
            name = f"Slider {i + 1} (z[{m.order[i]}])" if i < m.dim else f"Slider {i + 1}"
            v = validate.number(name, v, -Z_LIMIT, Z_LIMIT)
            if i < m.dim:
                z[0, m.order[i]] = v
        return z

    def _slider_values(self, m: Loaded, z: torch.Tensor) -> list[float]:
        vals = [float(z[m.order[i]]) if i < m.dim else 0.0 for i in range(self.n_sliders)]
        return [round(max(-SLIDER_MAX, min(SLIDER_MAX, v)), 2) for v in vals]

    def _sliders(self, m: Loaded, z: torch.Tensor, next_seed: int | None = None) -> Sliders:
        """z (D,) -> the slider values and the decoding of what they hold (through the live decode, so the
        image is the one the same slider values give when moved back to them)."""
        values = self._slider_values(m, z)
        return Sliders(values, self._live(m)(self._z(m, values)[0]), next_seed)

    def decode_sliders(self, dataset, *values) -> torch.Tensor:
        """The live decode: slider values (most-KL dimension first) -> the decoded image (1, H, W)."""
        m = self.loaded(self._key(dataset), "main")
        return self._live(m)(self._z(m, values)[0])

    def reset(self, dataset) -> Sliders:
        """Every slider at the prior mean z = 0."""
        m = self.loaded(self._key(dataset), "main")
        return self._sliders(m, torch.zeros(m.dim))

    def sample_prior(self, dataset, seed) -> Sliders:
        """z ~ N(0, I) (clipped to the slider range), its decoding, and the next seed."""
        m = self.loaded(self._key(dataset), "main")
        seed = validate.seed(seed)
        z = torch.randn((m.dim,), generator=torch.Generator().manual_seed(seed))
        return self._sliders(m, z, (seed + 1) % validate.MAX_SEED)

    # --- encoding ---

    def _encoded(self, key: str, x: torch.Tensor) -> Encoded:
        """x (1, 1, H, W) -> everything the Encode tab shows."""
        m = self.loaded(key, "main")
        mu, logvar = self._encode(m, x)
        state = Encoding(key, x.flatten().tolist(), mu[0].tolist(), logvar[0].tolist())
        return Encoded(x=x[0], recon=self._decode(m, mu)[0], samples=self._samples(m, state), mu=mu[0].tolist(),
                       sigma=(0.5 * logvar[0]).exp().tolist(), order=m.order, terms=self._terms(m, x), state=state)

    def encode_pick(self, dataset, pick) -> Encoded:
        key = self._key(dataset)
        return self._encoded(key, self._test_images(key, [self._pick(key, pick, "Test image")]))

    def encode_upload(self, dataset, image) -> Encoded:
        key = self._key(dataset)
        return self._encoded(key, self._prepared(key, image, "Uploaded image"))

    def encode_drawing(self, dataset, sketch) -> Encoded:
        key = self._key(dataset)
        return self._encoded(key, self._prepared(key, sketch, "Drawing"))

    def resample(self, state) -> tuple[torch.Tensor, Encoding]:
        """New eps for the same image: the samples (N_SAMPLES, 1, H, W) and the state with its next seed."""
        state = self._state(state)
        state = replace(state, seed=(state.seed + 1) % validate.MAX_SEED)
        return self._samples(self.loaded(state.key, "main"), state), state

    def to_sliders(self, dataset, state) -> Sliders:
        """Put the encoded image's mu on the sliders (when this data set's model encoded it)."""
        key = self._key(dataset)
        state = self._state(state)
        if state.key != key:
            raise InputError(f"That image was encoded with the {self.labels[state.key]} model; "
                             f"encode one with the {self.labels[key]} model first.")
        return self._sliders(self.loaded(key, "main"), torch.tensor(state.mu))

    # --- latent map ---

    def _map_points(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Test-set means of the map model (N, 2) and their labels (N,): the recipe's file, else encoded here."""
        m = self.loaded(key, "map")
        f = self.assets / f"{self.roles[key]['map']}_map.safetensors"

        def load():
            if f.exists():
                from safetensors.torch import load_file

                t = load_file(str(f))
                return t["mu"].float().numpy(), t["labels"].long().numpy()
            ds = self._test_set(key)
            return self._encode(m, ds.float01())[0].numpy(), ds.labels.numpy()

        return cache.once(("vae", "map-points", str(f)), load)

    def _mark(self, key: str, state) -> list[float] | None:
        if not isinstance(state, Encoding) or state.key != key:
            return None
        m = self.loaded(key, "map")
        s = m.model.config.image_size
        return self._encode(m, torch.tensor(state.x).view(1, 1, s, s))[0][0].tolist()

    def map_decode(self, dataset, z1, z2) -> torch.Tensor:
        """The map model's decoding of z = (z1, z2): (1, H, W)."""
        m = self.loaded(self._key(dataset), "map")
        return self._live(m)(torch.tensor([self._latent("z[0]", z1), self._latent("z[1]", z2)]))

    def map_plot(self, dataset, z1, z2, state=None) -> MapView:
        key = self._key(dataset)
        z = (self._latent("z[0]", z1), self._latent("z[1]", z2))
        pts, labels = self._map_points(key)
        return MapView(pts, labels, CLASSES[key], z, self._mark(key, state), Z_LIMIT)

    def manifold(self, dataset, n) -> tuple[torch.Tensor, int]:
        """The map model decoded on an n x n grid of prior quantiles: (n * n, 1, H, W), n."""
        m = self.loaded(self._key(dataset), "map")
        n = validate.integer("Grid size", n, GRID[0], GRID[1])
        return self._decode(m, quantile_grid(n)), n

    def map_all(self, dataset, z1, z2, n, state=None) -> MapAll:
        view = self.map_plot(dataset, z1, z2, state)
        grid, n = self.manifold(dataset, n)
        return MapAll(view.z, view, self.map_decode(dataset, *view.z), grid, n)

    def map_to_encoded(self, dataset, n, state) -> MapAll:
        """Move the map's z to the encoded image's mean under the map model."""
        key = self._key(dataset)
        validate.integer("Grid size", n, GRID[0], GRID[1])   # the request's own fields first, then the session
        mark = self._mark(key, state)
        if mark is None:
            raise InputError("Encode an image (Encode tab) with this data set first.")
        z1, z2 = [round(max(-SLIDER_MAX, min(SLIDER_MAX, v)), 2) for v in mark]
        return self.map_all(dataset, z1, z2, n, state)

    # --- interpolation ---

    def interpolate(self, dataset, pick_a, pick_b, steps, path) -> Interpolation:
        """Decode the straight and the spherical path between the means of two test images."""
        key = self._key(dataset)
        a, b = self._pick(key, pick_a, "Image A"), self._pick(key, pick_b, "Image B")
        n = validate.integer("Steps", steps, STEPS[0], STEPS[1])
        path = validate.choice("GIF path", path, GIF_PATHS)
        m = self.loaded(key, "main")
        mu, _ = self._encode(m, self._test_images(key, [a, b]))
        t = torch.linspace(0, 1, n)
        return Interpolation(self._decode(m, lerp(mu[0], mu[1], t)), self._decode(m, slerp(mu[0], mu[1], t)), path)

    # --- beta ---

    def compare_beta(self, dataset, seed) -> BetaComparison:
        """BETA_IMAGES test images (chosen by the seed), their reconstructions by both models, and the
        same prior draws eps through both decoders."""
        key = self._key(dataset)
        seed = validate.seed(seed)
        lo, hi = self.loaded(key, "main"), self.loaded(key, "beta")
        g = torch.Generator().manual_seed(seed)
        x = self._test_images(key, torch.randperm(len(self._test_set(key)), generator=g)[:BETA_IMAGES])
        rows = [x] + [self._decode(m, self._encode(m, x)[0]) for m in (lo, hi)]
        eps = torch.randn((BETA_IMAGES, lo.dim), generator=torch.Generator().manual_seed(seed))
        rows += [self._decode(lo, eps), self._decode(hi, eps[:, : hi.dim])]
        return BetaComparison(torch.cat(rows), BETA_IMAGES, (lo.model.config.beta, hi.model.config.beta),
                              (lo.card["metrics"]["kl_per_dim_nats"], hi.card["metrics"]["kl_per_dim_nats"]))

    # --- VQ-VAE: a grid of codes from a codebook ---

    def _vq(self, key: str):
        """The data set's VQ-VAE (model, card), loaded on first use and shared by every session."""
        path = self.assets / vq_name(key)
        if not all(path.with_suffix(ext).exists() for ext in (".safetensors", ".json")):
            raise Unavailable(f"The checkpoint {self._shown(path)} is missing; train it with "
                              f"`python -m demos.train_vqvae --data {key}` (see its --help).")
        return cache.once(("vae", str(path)), lambda: checkpoint.load(path, device="cpu"))

    @property
    def vq_shape(self) -> tuple[int, int]:
        """(cells per side of the code grid, codebook size K) of the default data set's VQ-VAE, from its card
        (the ranges of the tab's sliders); the config's defaults without one."""
        c = self._card(vq_name(DEFAULT))
        cfg = VQConfig(**c["config"]) if c else VQConfig()
        return cfg.image_size // 4, cfg.codes

    @torch.inference_mode()
    def _vq_usage(self, key: str) -> tuple[list[int], int]:
        """How often each code is chosen over the cells of the first USAGE_IMAGES test images (fewer where the
        split is smaller), measured once: (counts (K,), images)."""
        model, _ = self._vq(key)

        def count():
            x = self._test_images(key, slice(0, USAGE_IMAGES))
            k, _ = model.quantize(model.encode(x))
            return torch.bincount(k.flatten(), minlength=model.config.codes).tolist(), len(x)

        return cache.once(("vae", "vq-usage", key), count)

    @torch.inference_mode()
    def _vq_view(self, key: str, index: int, codes: list[list[int]] | None, cell: tuple[int, int]) -> VQView:
        """Test image `index` encoded once (its codes, loss terms and decode) beside the grid `codes` decoded
        (None: the encoder's own grid, no edit yet)."""
        model, card = self._vq(key)
        x = self._test_images(key, [index])                                     # (1, 1, H, W)
        z_e = model.encode(x)
        k, z_q = model.quantize(z_e)
        original = k[0].tolist()
        state = VQCodes(key, index, [row[:] for row in original] if codes is None else codes, original)
        codebook, commitment = vq_terms(z_e, z_q)
        logits = model.decode_logits(z_q)                                      # z_q = e_k: decode_codes(k)'s input
        terms = {"recon": float(recon_nll(logits, x)[0]), "codebook": float(codebook[0]),
                 "commitment": float(commitment[0]), "beta": model.config.beta}
        recon = torch.sigmoid(logits)
        edited = recon if codes is None else model.decode_codes(torch.tensor([codes]))
        usage, n = self._vq_usage(key)
        return VQView(x[0], recon[0], edited[0], cell, terms, usage, perplexity(torch.tensor(usage)),
                      n, card, self._card(self.roles[key]["main"]), state)

    def vq_encode(self, dataset, pick) -> VQView:
        """A test image -> its grid of codes k = argmin_j ||z_e - e_j||^2, decoded; no edit yet."""
        key = self._key(dataset)
        index = self._pick(key, pick, "Test image")
        g = self._vq(key)[0].grid
        return self._vq_view(key, index, None, (g // 2, g // 2))

    def vq_first(self, dataset, state) -> tuple[VQView, str] | None:
        """The VQ-VAE view as the sub-tab opens: the data set's first test image (view, its pick label) and its
        codes, unless an image of this data set is already encoded (None: leave the view as it is)."""
        if isinstance(state, VQCodes) and state.key == self._key(dataset):
            return None
        first = pick_labels(self._key(dataset))[0]
        return self.vq_encode(dataset, first), first

    def vq_edit(self, dataset, state, row, col, code) -> VQView:
        """Put code `code` into cell (row, col) of the grid (edits add up) and decode the grid."""
        key = self._key(dataset)
        model, _ = self._vq(key)
        g, n = model.grid, model.config.codes
        row = validate.integer("Cell row", row, 0, g - 1)
        col = validate.integer("Cell column", col, 0, g - 1)
        code = validate.integer("Code", code, 0, n - 1)
        if not isinstance(state, VQCodes):
            raise InputError("Pick a test image on the VQ-VAE tab first.")
        if state.key != key:
            raise InputError(f"That image was encoded with the {self.labels[state.key]} VQ-VAE; "
                             f"pick one with the {self.labels[key]} model first.")
        codes = [r[:] for r in state.codes]
        codes[row][col] = code
        return self._vq_view(key, state.index, codes, (row, col))

    # --- the data set and its cards ---

    def dataset_info(self, dataset) -> DatasetInfo:
        """What the tab shows about a data set's models, from their cards (no model is loaded)."""
        key = self._key(dataset)
        roles = self.roles[key]
        cards = {role: self._card(name) if name else None for role, name in roles.items()}
        main = cards["main"]
        kl = main["metrics"]["kl_per_dim_nats"] if main else []
        picks = pick_labels(key)
        ia, ib = INTERP_DEFAULTS[key]
        figures = []
        for role in ("main", "beta", "map", "peer"):
            c = cards[role]
            if c is None or not (self.assets / f"{roles[role]}.safetensors").exists():
                continue
            cfg, m = c["config"], c["metrics"]
            model = (f"peer: MLP VAE {cfg['image_size'] ** 2}-{cfg['hidden']}-{cfg['latent_dim']}" if role == "peer"
                     else f"ours, {cfg['latent_dim']}-D latent" if role == "map" else f"ours, beta = {cfg['beta']:g}")
            figures.append({"model": model, "neg_elbo": m["neg_elbo_nats"], "recon": m["recon_nats"],
                            "kl": m["kl_nats"], "epochs": c["recipe"]["epochs"], "parameters": c["parameters"],
                            "images": m["eval_images"]})
        source = hub.choose(None, self._shown(self.assets) + "/").markdown()
        return DatasetInfo(
            key=key, label=self.labels[key], source=source,
            latent_dim=main["config"]["latent_dim"] if main else None,
            image_size=main["config"]["image_size"] if main else self.image_size,
            kl_per_dim=kl, order=sorted(range(len(kl)), key=lambda j: -kl[j]),
            betas=(main["config"]["beta"], cards["beta"]["config"]["beta"]) if main and cards["beta"] else None,
            map_dim=cards["map"]["config"]["latent_dim"] if cards["map"] else None,
            picks=picks, interp=(picks[ia], picks[ib]), figures=figures)

    # --- the lesson link and the guided tour ---

    def all_picks(self) -> list[str]:
        """Every data set's test-image labels: what a link may name in a picker."""
        return [label for key in self.keys.values() for label in pick_labels(key)]

    def _judge(self, key: str, x: torch.Tensor) -> tuple[list[str], list[float]]:
        """The domain classifier's class and probability for images (N, 1, H, W) in [0, 1]."""
        from playground.judge import metrics

        with torch.inference_mode():
            p = metrics.classifier(key)(x.float().clamp(0, 1)).softmax(-1)            # (N, classes)
        conf, cls = p.max(-1)
        return [CLASSES[key][int(c)] for c in cls], conf.tolist()

    def link_view(self, view, dataset, zs, pick, x, y, grid_n, a, b, steps, path, beta_seed, state, vq_pick,
                  vq_row, vq_col, vq_code) -> tuple:
        """What a lesson link opens on, computed without a click: (data set info, the sliders' decode,
        then the encoded pick, map, interpolation, beta comparison and VQ edit, each None unless the link
        asks for it: a pick, or its view)."""
        vq = view == "vq" and vq_pick and self.vq_encode(dataset, vq_pick).state   # the link's image, one edit
        return (self.dataset_info(dataset), self.decode_sliders(dataset, *zs),
                self.encode_pick(dataset, pick) if pick else None,
                self.map_all(dataset, x, y, grid_n, state) if view == "map" else None,
                self.interpolate(dataset, a, b, steps, path) if view == "interp" else None,
                self.compare_beta(dataset, beta_seed) if view == "beta" else None,
                self.vq_edit(dataset, vq, vq_row, vq_col, vq_code) if vq else None)

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer, computed on the live model (core.lesson.Reveal)."""
        from playground.core.lesson import Reveal

        key = self._key(values.get("dataset", self.default))
        m = self.loaded(key, "main")
        if check == "slider_effect":                 # move one slider from `lo` to `hi`, the others at 0
            raw = int(args.get("slider", 1))              # 1 = most KL; -1 = the last (least KL)
            i = max(0, m.dim + raw) if raw < 0 else min(max(raw, 1), m.dim) - 1
            lo, hi = float(args.get("lo", -2)), float(args.get("hi", 2))
            z = torch.zeros(2, m.dim)
            z[0, m.order[i]], z[1, m.order[i]] = lo, hi
            x = self._decode(m, z)
            names, conf = self._judge(key, x)
            change = float((x[0] - x[1]).abs().mean())
            answer = args["choices"][0] if names[0] != names[1] else (
                args["choices"][1] if change >= VISIBLE else args["choices"][2])
            kl = m.card["metrics"]["kl_per_dim_nats"][m.order[i]]
            return Reveal(answer, f"Slider {i + 1} drives z[{m.order[i]}] (held-out KL {kl:.2f} nats). At z = {lo:g} "
                                  f"the judge reads *{names[0]}* ({conf[0]:.0%}), at z = {hi:g} *{names[1]}* "
                                  f"({conf[1]:.0%}); the mean pixel change is {change:.3f} (of 1).")
        if check == "prior_samples":                 # decode z ~ N(0, I): how many look like a class?
            n = validate.integer("Samples", args.get("n", 64), 8, 512)
            x = self._decode(m, torch.randn((n, m.dim), generator=torch.Generator().manual_seed(int(args.get("seed", 0)))))
            _, conf = self._judge(key, x)
            share = sum(c >= CONFIDENT for c in conf) / n
            answer = args["choices"][0] if share >= 0.5 else args["choices"][1]
            return Reveal(answer, f"{n} draws of z ~ N(0, I), decoded: the judge is at least {CONFIDENT:.0%} sure of "
                                  f"a class for {share:.0%} of them (mean confidence {sum(conf) / n:.0%}).")
        if check == "blur":                           # decode(mu) against the input: edge strength
            idx = pick_labels(key).index(values["pick"]) if values.get("pick") in pick_labels(key) else 0
            x = self._test_images(key, [PICKS[key][idx]])
            mu, _ = self._encode(m, x)
            r = self._decode(m, mu)

            def edges(t):
                return float((t[..., 1:, :] - t[..., :-1, :]).abs().mean() + (t[..., 1:] - t[..., :-1]).abs().mean())
            e_in, e_out = edges(x), edges(r)
            answer = args["choices"][0] if e_out < 0.9 * e_in else args["choices"][2] if e_out > 1.1 * e_in \
                else args["choices"][1]
            return Reveal(answer, f"Edge strength (mean absolute difference of neighbouring pixels): the input "
                                  f"{e_in:.3f}, decode(mu) {e_out:.3f} ({e_out / e_in:.0%} of the input's).")
        if check == "beta_blur":                      # reconstruction error of both models on test images
            lo_m, hi_m = m, self.loaded(key, "beta")
            x = self._test_images(key, list(range(int(args.get("n", 256)))))
            errs = [float(torch.nn.functional.binary_cross_entropy(self._decode(mm, self._encode(mm, x)[0]), x,
                                                                    reduction="sum")) / len(x) for mm in (lo_m, hi_m)]
            betas = (lo_m.model.config.beta, hi_m.model.config.beta)
            answer = args["choices"][1] if errs[1] > errs[0] else args["choices"][0]
            return Reveal(answer, f"Reconstruction error of decode(mu) on {len(x)} test images (nats per image): "
                                  f"beta = {betas[0]:g}: {errs[0]:.1f}; beta = {betas[1]:g}: {errs[1]:.1f}. "
                                  f"Held-out KL: {lo_m.card['metrics']['kl_nats']:.1f} against "
                                  f"{hi_m.card['metrics']['kl_nats']:.1f} nats.")
        if check == "vq_recon":                       # the VQ-VAE's decoded codes against the VAE's decode(mu)
            vq, _ = self._vq(key)
            x = self._test_images(key, list(range(int(args.get("n", 256)))))
            with torch.inference_mode():
                errs = [float(recon_nll(vq.decode_logits(vq.quantize(vq.encode(x))[1]), x).mean()),
                        float(recon_nll(m.model.decode_logits(self._encode(m, x)[0]), x).mean())]
            answer = args["choices"][0] if errs[0] < errs[1] else args["choices"][1]
            return Reveal(answer, f"Reconstruction error -log p(x | decoded) on {len(x)} test images (nats per image): "
                                  f"VQ-VAE, {vq.grid} x {vq.grid} codes of {vq.config.codes}: {errs[0]:.1f}; VAE, "
                                  f"decode(mu) of {m.dim} numbers: {errs[1]:.1f}.")
        raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")

    # --- for the Home tab, the load script and the benchmarks ---

    def speed_probe(self) -> dict:
        """Median time of one decoder pass of the bundled Fashion-MNIST model (torch.utils.benchmark)."""
        m = self.loaded(DEFAULT, "main")
        z = torch.randn((1, m.dim), generator=torch.Generator().manual_seed(0))
        s = m.model.config.image_size
        return {"family": "VAE", "what": f"one {s}x{s} decoder pass",
                "seconds": timing.median_seconds(lambda: self._decode(m, z), min_run_time=PROBE_SECONDS)}

    def load_calls(self) -> list:
        labels = pick_labels(DEFAULT)
        a, b = INTERP_DEFAULTS[DEFAULT]
        return [("vae_decode", [self.default, *([0.5] * self.n_sliders)]),
                ("vae_encode_pick", [self.default, labels[0]]),
                ("vae_interpolate", [self.default, labels[a], labels[b], STEPS[2], GIF_PATHS[0]])]
