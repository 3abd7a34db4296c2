"""HDC's test-time embedding: weighted concatenation of the L2-normalised heads (METHOD §2).

    e = [w_1 * z_1 / ||z_1||, w_2 * z_2 / ||z_2||, w_3 * z_3 / ||z_3||]        (B, sum_k D_k)

Deeper heads get larger weights on Cars and CUB. Evaluation L2-normalises e again
before ranking (METHOD §4), so only the ratios of the weights matter.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# per-dataset head weights (METHOD §2); other datasets: equal weights
HEAD_WEIGHTS = {"cars196": [1.0, 2.0, 3.0], "cub": [1.0, 1.0, 2.0], "sop": [1.0, 1.0, 1.0]}


def concat_heads(embeddings: list[torch.Tensor], weights) -> torch.Tensor:
    """embeddings: per head (B, D_k); weights: one number per head -> (B, sum_k D_k).

    Each head is L2-normalised, multiplied by its weight, then the heads are concatenated.
    """
    if len(weights) != len(embeddings):
        raise ValueError(f"hdc.head_weights has {len(weights)} values for {len(embeddings)} heads")
    return torch.cat([float(w) * F.normalize(z.float(), dim=1) for z, w in zip(embeddings, weights)], dim=1)
