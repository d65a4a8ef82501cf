"""A tiny random Llama and a byte-level BPE tokenizer trained here on a few sentences: the same
code paths as the real model (chat template, left padding, KV cache, sampling) in milliseconds.
Used by the fast tests; its output is gibberish by design."""
from __future__ import annotations

CORPUS = [
    "Roger has 5 tennis balls. He buys 2 more cans. The answer is 11.",
    "The film was wonderful and the actors were great. positive",
    "The app crashes and the support never answers. negative",
    "Let's think step by step. 4 * 6 = 24 and 24 - 9 = 15.",
    "system user assistant: you are a careful assistant. answer briefly.",
]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>"]


def tokenizer(chat_template: bool = True, vocab_size: int = 300):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>")
    if chat_template:
        fast.chat_template = TEMPLATE
    return fast


def model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=0, eos_token_id=2, bos_token_id=1, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def backend(chat_template: bool = True, seed: int = 0):
    from playground.prompting.engine import LocalBackend

    tok = tokenizer(chat_template)
    return LocalBackend(model(len(tok), seed), tok, name="tiny-random-llama", device="cpu")
