"""CLIP lab: the contrastive loss against hand-computed batches, the open_clip loading path with a
locally saved checkpoint (the same factory call as the hub model), the bundled model and its card,
and the gallery's embedding cache."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from playground.clip import model as cm

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
    assert expected == pytest.approx(0.448875, abs=1e-5)
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


def test_local_checkpoint_loads_through_the_hub_factory(tmp_path):
    """Save a tiny open_clip model as safetensors, then load it by path through the same function the
    tab uses for a hub tag: open_clip.create_model_and_transforms(name, pretrained=<path>)."""
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


def test_register_reregisters_a_changed_config(tmp_path):
    import open_clip

    cfg = dataclasses.replace(TINY, name="PlaygroundCLIP-TestChange")
    cm.register(cfg, tmp_path)
    cm.register(dataclasses.replace(cfg, embed_dim=24), tmp_path)
    assert open_clip.get_model_config(cfg.name)["embed_dim"] == 24


def test_bundled_model_and_card():
    card = cm.read_card()
    assert cm.BUNDLED.stat().st_size < 10 * 1024 * 1024
    assert card["config"] == dataclasses.asdict(cm.config_from_card(card))
    m = card["metrics"]
    for source in ("emoji_unseen_names", "fashion_test", "shapes_fresh_drawings", "shapes_unseen_colour_shape_pairs"):
        for key in ("i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5"):
            assert 0.0 <= m["retrieval"][source][key] <= 1.0
    zs = m["fashion_zero_shot"]
    assert zs["images"] == 10_000 and 0 <= zs["single_template"] <= 1 and 0 <= zs["ensemble"] <= 1
    assert card["seed"] == 0 and card["steps"] > 0 and card["train_seconds"] <= 35 * 60
    model, preprocess, tok = cm.load_bundled()
    r = cm.ClipRunner(model, preprocess, tok, "bundled")
    from PIL import Image

    e = r.encode_pils([Image.new("RGB", (30, 20), (255, 0, 0))])
    t = r.encode_texts(["a red apple", "a cat"])
    assert e.shape == (1, 128) and t.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)


def test_bundled_model_separates_fashion_classes():
    """Golden behaviour of the bundled model: the example sneaker is classified as a sneaker."""
    from PIL import Image

    from playground.clip.data import FASHION_LABELS

    model, preprocess, tok = cm.load_bundled()
    r = cm.ClipRunner(model, preprocess, tok, "bundled")
    x = r.encode_pils([Image.open(cm.ASSETS / "examples" / "fashion_sneaker.png")])[0]
    ce = r.class_embeddings(FASHION_LABELS, cm.ENSEMBLE_TEMPLATES)
    assert FASHION_LABELS[int(np.argmax(ce @ x))] in ("sneaker", "sandal", "ankle boot")


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


def test_tab_names_the_bundled_file():
    from playground.clip import tab
    from playground.core import hub

    hub.decide("yes")
    src = tab.source()
    assert src.kind == "bundled" and cm.BUNDLED.as_posix().endswith(src.ref)
