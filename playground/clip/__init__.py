"""CLIP lab: text-image retrieval, zero-shot classification and the contrastive matrix (open_clip)."""
