"""A tiny Stable Diffusion built from configs, with random weights: the same five parts as a real one
(CLIP tokenizer and text encoder, UNet2DConditionModel, AutoencoderKL, scheduler) plus a tiny
AutoencoderTiny (the TAESD architecture) for previews, at the sizes diffusers' own fast tests use.

It was never trained, so its pictures are noise: it exists so that the text-to-image code path (loader,
step loop, tab, ZeroGPU chunks) can be tested and timed on a machine with no hub and no GPU, and so that
anyone can see the mechanics offline:

    python -m playground.diffusion.sd_tiny /tmp/tiny-sd        # writes the folder (safetensors)
    PLAYGROUND_SD_MODEL=/tmp/tiny-sd python app.py             # the Diffusion tab's text-to-image part uses it

The tokenizer is CLIP's byte-level BPE, read from the vocabulary open_clip ships in its wheel, cut to its
first TOKENIZER_MERGES merges (a small vocabulary, as the tiny text encoder's embedding table).
"""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import torch

TOKENIZER_MERGES = 486          # 2 x 256 byte symbols + these merges + 2 special tokens = a 1,000-token vocabulary
TEXT_HIDDEN = 32                # CLIP text width = the U-Net's cross-attention width
TAESD_FOLDER = "taesd"          # a model folder may hold its preview decoder in this subfolder (sd.load_sd)


def tokenizer(n_merges: int = TOKENIZER_MERGES):
    """CLIP's tokenizer (byte-level BPE, lower-cased, <|startoftext|> ... <|endoftext|>, 77 tokens) over the
    first n_merges merges of open_clip's vocabulary; the token order is CLIP's own."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : n_merges + 1]   # line 0: a version header
    merges = [tuple(m.split()) for m in lines]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={v: i for i, v in enumerate(vocab)}, merges=merges,
                         model_max_length=77)


def build(seed: int = 0):
    """A StableDiffusionPipeline of tiny random parts (seeded), and its tiny TAESD: (pipe, taesd)."""
    from diffusers import (AutoencoderKL, AutoencoderTiny, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_HIDDEN,
                                attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        norm_num_groups=8, layers_per_block=1, sample_size=128)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=TEXT_HIDDEN, intermediate_size=37,
                                        num_hidden_layers=5, num_attention_heads=4, max_position_embeddings=77,
                                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                        pad_token_id=tok.pad_token_id))
    # Stable Diffusion 1.x ships PNDM (a multistep sampler: it keeps state between steps); DDIM's config
    # carries the schedule the others are built from.
    sched = PNDMScheduler.from_config(DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                    clip_sample=False, set_alpha_to_one=False, steps_offset=1).config,
                                      skip_prk_steps=True)
    taesd = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                            num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))
    for m in (unet, vae, text, taesd):
        m.eval()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return pipe, taesd


def save(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny model as a model folder (save_pretrained, safetensors), its TAESD in TAESD_FOLDER."""
    folder = Path(folder)
    pipe, taesd = build(seed)
    pipe.save_pretrained(folder, safe_serialization=True)
    taesd.save_pretrained(folder / TAESD_FOLDER, safe_serialization=True)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m playground.diffusion.sd_tiny FOLDER")
    print(save(sys.argv[1]))
