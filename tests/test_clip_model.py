"""CLIP lab: the contrastive loss against hand-computed batches, the modality gap and the PCA of the map
against closed forms, the open_clip loading path with a locally saved checkpoint (the same factory call
as the hub model), the bundled model and its card, and the gallery's embedding cache.

Golden values: `python tests/test_clip_model.py` prints the current ones."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # also run as a script: the golden values
from playground.clip import model as cm  # noqa: E402

# The hand-computed batch's loss, worked out in test_contrastive_loss_hand_computed_batch's comments.
HAND_LOSS = 0.448879        # regenerate: python tests/test_clip_model.py
# The bundled model on assets/clip/examples/fashion_sneaker.png with the ensemble of templates: the
# cosine of the image with its three nearest Fashion-MNIST labels, nearest first.
SNEAKER_TOP3 = [("sneaker", 0.842), ("sandal", 0.697), ("ankle boot", 0.680)]   # regenerate: python tests/test_clip_model.py

TINY = cm.TinyClipConfig(name="PlaygroundCLIP-TestTiny", embed_dim=16, image_size=16, patch_size=8,
                         vision_width=32, vision_layers=1, vision_head_width=16, context_length=8,
                         text_width=16, text_heads=2, text_layers=1)


def test_contrastive_loss_identity_batch():
    # logits = I (scale 1): every row and column is softmax([1, 0]); loss = -log(e / (e + 1)) = log(1 + e^-1)
    x = torch.eye(2)
    loss = cm.contrastive_loss(x, x, torch.tensor(0.0))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)


def test_contrastive_loss_hand_computed_batch():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = img @ txt.T = [[1, 0.6], [0, 0.8]]
    # image->text rows:   -log softmax([1, .6])[0] = log(1 + e^-.4);  -log softmax([0, .8])[1] = log(1 + e^-.8)
    # text->image columns: -log softmax([1, 0])[0] = log(1 + e^-1);   -log softmax([.6, .8])[1] = log(1 + e^-.2)
    rows = (math.log1p(math.exp(-0.4)) + math.log1p(math.exp(-0.8))) / 2
    cols = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-0.2))) / 2
    expected = 0.5 * (rows + cols)
    assert expected == pytest.approx(HAND_LOSS, abs=1e-6)
    assert cm.contrastive_loss(img, txt, torch.tensor(0.0)).item() == pytest.approx(expected, abs=1e-6)
    # a logit scale of log 2 (temperature 1/2) doubles every logit
    rows2 = (math.log1p(math.exp(-0.8)) + math.log1p(math.exp(-1.6))) / 2
    cols2 = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-0.4))) / 2
    assert cm.contrastive_loss(img, txt, torch.tensor(math.log(2))).item() == pytest.approx(0.5 * (rows2 + cols2), abs=1e-6)
    # the numpy twin shown in the tab agrees (sim is texts x images, so pass its transpose too)
    sim = (txt @ img.T).numpy()
    assert cm.info_nce(sim, 1.0) == pytest.approx(expected, abs=1e-6)


def test_info_nce_matches_torch_on_random_batch():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    t = 0.07
    torch_loss = cm.contrastive_loss(img, txt, torch.tensor(math.log(1 / t))).item()
    assert cm.info_nce((txt @ img.T).numpy(), t) == pytest.approx(torch_loss, rel=1e-5)
    rows, cols = cm.softmaxes((txt @ img.T).numpy(), t)
    np.testing.assert_allclose(rows.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(cols.sum(0), 1, atol=1e-6)


def test_topk_orders_by_cosine():
    index = np.eye(4, dtype=np.float32)
    q = np.array([0.1, 0.9, 0.3, 0.0], np.float32)
    idx, s = cm.topk(q, index, 3)
    assert idx.tolist() == [1, 2, 0]
    np.testing.assert_allclose(s, [0.9, 0.3, 0.1])


@pytest.mark.slow
def test_local_checkpoint_loads_through_the_hub_factory(tmp_path):
    """Save a tiny open_clip model as safetensors, then load it by path through the same function the
    service uses for a hub tag: open_clip.create_model_and_transforms(name, pretrained=<path>)."""
    from safetensors.torch import save_file

    name = cm.register(TINY, tmp_path / "configs")
    torch.manual_seed(0)
    model, _, tok = cm.load(name, None)
    path = tmp_path / "tiny_open_clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded, preprocess, tok2 = cm.load(name, str(path))
    x = torch.randn(2, 3, 16, 16)
    t = tok2(["a red circle", "a blue square"])
    assert t.shape == (2, TINY.context_length)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(x), model.encode_image(x))
        torch.testing.assert_close(loaded.encode_text(t), model.encode_text(t))
    assert preprocess.transforms[0].size == 16
    # a pickle checkpoint is refused before open_clip would torch.load it
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="safetensors"):
        cm.load(name, str(bad))


@pytest.mark.slow
def test_register_reregisters_a_changed_config(tmp_path):
    import open_clip

    cfg = dataclasses.replace(TINY, name="PlaygroundCLIP-TestChange")
    cm.register(cfg, tmp_path)
    cm.register(dataclasses.replace(cfg, embed_dim=24), tmp_path)
    assert open_clip.get_model_config(cfg.name)["embed_dim"] == 24


def _bundled_runner(config_dir) -> cm.ClipRunner:
    return cm.ClipRunner(*cm.load_bundled(cm.BUNDLED, config_dir), "bundled")


@pytest.mark.slow
def test_bundled_model_and_card(tmp_path):
    card = cm.read_card()
    assert cm.BUNDLED.stat().st_size < 10 * 1024 * 1024
    assert card["config"] == dataclasses.asdict(cm.config_from_card(card))
    m = card["metrics"]
    for source in ("emoji_unseen_names", "fashion_test", "shapes_fresh_drawings", "shapes_unseen_colour_shape_pairs"):
        for key in ("i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5"):
            assert 0.0 <= m["retrieval"][source][key] <= 1.0
    zs = m["fashion_zero_shot"]
    assert zs["images"] == 10_000 and 0 <= zs["single_template"] <= 1 and 0 <= zs["ensemble"] <= 1
    assert zs["templates_ensemble"] == list(cm.ENSEMBLE_TEMPLATES) and zs["templates_single"] == cm.SINGLE_TEMPLATE
    assert card["seed"] == 0 and card["steps"] > 0 and card["train_seconds"] <= 35 * 60
    r = _bundled_runner(tmp_path)
    assert (tmp_path / f"{card['config']['name']}.json").exists()     # the config went where it was told
    from PIL import Image

    e = r.encode_pils([Image.new("RGB", (30, 20), (255, 0, 0))])
    t = r.encode_texts(["a red apple", "a cat"])
    dim = card["config"]["embed_dim"]
    assert e.shape == (1, dim) and t.shape == (2, dim)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    assert r.temperature == pytest.approx(m["temperature"], abs=1e-4)


def _sneaker_cosines(config_dir) -> list[tuple[str, float]]:
    from PIL import Image

    from playground.clip.data import FASHION_LABELS
    from playground.core import paths

    r = _bundled_runner(config_dir)
    x = r.encode_pils([Image.open(paths.assets("clip", "examples", "fashion_sneaker.png"))])[0]
    cos = r.class_embeddings(FASHION_LABELS, cm.ENSEMBLE_TEMPLATES) @ x           # (10,)
    return [(FASHION_LABELS[i], round(float(cos[i]), 3)) for i in np.argsort(-cos)]


@pytest.mark.slow
def test_bundled_model_classifies_the_example_sneaker(tmp_path):
    """Golden behaviour of the bundled model: the example sneaker is classified as a sneaker (and only
    that label counts), with the cosines of its three nearest labels pinned to 3 decimals."""
    ranked = _sneaker_cosines(tmp_path)
    assert ranked[0][0] == "sneaker"
    assert [lab for lab, _ in ranked[:3]] == [lab for lab, _ in SNEAKER_TOP3]
    for (_, got), (_, want) in zip(ranked, SNEAKER_TOP3):
        assert got == pytest.approx(want, abs=1.5e-3)


def test_modality_gap_closed_forms():
    # twenty pairs, every image e1 and every caption e2: d_i = e1 - e2 for all i, so the gap is
    # |e1 - e2| = sqrt 2, as is every pair's distance; a random swap flips some d_i, so the swapped
    # gap is |sum s_i| / 20 * sqrt 2 < sqrt 2 unless all twenty signs agree (p = 2^-19 per swap)
    n = 20
    img = np.tile(np.eye(3, dtype=np.float32)[0], (n, 1))
    txt = np.tile(np.eye(3, dtype=np.float32)[1], (n, 1))
    g = cm.modality_gap(img, txt, swaps=50)
    assert g["centroid_distance"] == pytest.approx(math.sqrt(2), abs=1e-6)
    assert g["pair_distance"] == pytest.approx(math.sqrt(2), abs=1e-6)
    assert g["chance_max"] < g["centroid_distance"] and g["swaps"] == 50
    assert (g["matched_cos"], g["image_text_cos"], g["image_image_cos"], g["text_text_cos"]) == (0, 0, 1, 1)
    # images equal to their captions: no gap, and no swap can make one
    g = cm.modality_gap(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), swaps=10)
    assert g["centroid_distance"] == 0 and g["chance_max"] == 0 and g["matched_cos"] == pytest.approx(1)


def test_pca_lowrank_matches_an_exact_svd():
    """The map's 2-D projection (torch.pca_lowrank) equals the exact SVD's, column signs aside, on
    embedding-like data: a few strong directions plus noise, unit rows."""
    from playground.clip import views

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 4)) @ (rng.standard_normal((4, 128)) * [[6], [4], [2], [1]]) \
        + 0.3 * rng.standard_normal((300, 128))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    xy, var = views.pca2(x)
    c = x.astype(np.float64) - x.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    exact = c @ vt[:2].T
    signs = np.sign((xy * exact).sum(0))
    np.testing.assert_allclose(xy * signs, exact, atol=1e-4)
    np.testing.assert_allclose(var, s[:2] ** 2 / (s**2).sum(), rtol=1e-4)
    np.testing.assert_array_equal(views.pca2(x)[0], xy)                  # seeded: the same picture each time


def test_embedding_cache_round_trip_and_reuse(tmp_path):
    from PIL import Image

    from playground.clip import gallery as gl

    g = gl.Gallery(emoji=False, photos=False)
    for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        g._add(str(c), "test", Image.new("RGB", (8, 8), c))
    calls = []

    def encode(imgs):
        calls.append(len(imgs))
        return np.stack([np.asarray(im, np.float32).mean((0, 1)) / 255 for im in imgs])

    cache = gl.EmbeddingCache(tmp_path, "model/a:b")
    e1 = gl.index(g, encode, cache)
    assert calls == [3] and e1.shape == (3, 3)
    assert cache.path.name == "model_a_b.safetensors" and cache.path.exists()
    e2 = gl.index(g, encode, gl.EmbeddingCache(tmp_path, "model/a:b"))   # a fresh process reads the file
    assert calls == [3]
    np.testing.assert_array_equal(e1, e2)
    gl.index(g, encode, gl.EmbeddingCache(tmp_path, "another-model"))      # another model: encoded again
    assert calls == [3, 3]


def test_shapes_captions_are_compositional():
    from playground.clip import data as cd

    imgs, caps, canon = cd.shapes(20, 0)
    assert imgs.shape == (20, 48, 48, 3) and len(caps) == 20
    for c in canon:
        assert any(col in c for col in cd.COLOURS) and any(s in c for s in cd.SHAPES)
    _, _, unseen = cd.shapes(30, 1, unseen=True)
    pairs = {(col, s) for col, s in cd.UNSEEN_PAIRS}
    assert all(any(f"{col} {s}" in c for col, s in pairs) for c in unseen)
    tr, held = cd.emoji_split(100)
    assert len(held) == 10 and not set(tr) & set(held)


@pytest.mark.slow
def test_register_writes_the_config_into_the_given_folder(tmp_path):
    """Every registration writes its file where it is told, even when open_clip already knows the name."""
    cfg = dataclasses.replace(TINY, name="PlaygroundCLIP-TestFolder")
    cm.register(cfg, tmp_path / "a")
    cm.register(cfg, tmp_path / "b")
    for folder in ("a", "b"):
        assert json.loads((tmp_path / folder / f"{cfg.name}.json").read_text()) == cfg.open_clip_config()


if __name__ == "__main__":
    import tempfile

    print("HAND_LOSS =", round(0.5 * ((math.log1p(math.exp(-0.4)) + math.log1p(math.exp(-0.8))) / 2
                                      + (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-0.2))) / 2), 6))
    with tempfile.TemporaryDirectory() as d:
        print("SNEAKER_TOP3 =", _sneaker_cosines(d)[:3])
