"""How the next token is drawn from the model's logits: temperature, top-k and nucleus (top-p).

Temperature (Ackley et al. 1985, used for LMs since Hinton et al.'s distillation paper):
    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T)          T -> 0 is greedy (argmax), T = 1 is the model
Top-k (Fan et al. 2018, "Hierarchical Neural Story Generation"): keep the k largest p_i, renormalise.
Top-p / nucleus (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): keep the
smallest set V_p of most likely tokens with sum_{i in V_p} p_i >= p, renormalise.

Pure torch; the decoding loop in `engine.py` and the tab's sampling view both call `filtered_probs`.
"""
from __future__ import annotations

import torch


def filtered_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Next-token probabilities after temperature, top-k and top-p. logits: (B, V) -> (B, V).

    temperature <= 0 means greedy: all the mass on the argmax (ties: the lowest token id)."""
    logits = logits.float()
    if temperature <= 0:
        out = torch.zeros_like(logits)
        out.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
        return out
    z = logits / temperature                                           # (B, V)   z_i / T
    if top_k and 0 < top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]            # (B, 1)   k-th largest
        z = z.masked_fill(z < kth, float("-inf"))
    probs = torch.softmax(z, dim=-1)                                   # (B, V)   p_i(T)
    if top_p < 1.0:
        sorted_p, idx = torch.sort(probs, dim=-1, descending=True)     # (B, V)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p             # mass strictly before each token
        drop_sorted = before >= top_p                                  # keep until the sum reaches p
        drop_sorted[..., 0] = False                                    # the most likely token always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def draw(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row. logits: (B, V) -> (B,) token ids."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = filtered_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def top_tokens(probs: torch.Tensor, k: int = 20) -> tuple[list[int], list[float]]:
    """The k most likely token ids of a (V,) distribution, with their probabilities."""
    p, i = torch.topk(probs, min(k, probs.shape[-1]))
    return i.tolist(), p.tolist()
