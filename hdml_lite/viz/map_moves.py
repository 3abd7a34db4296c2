"""Bars against map (notebook 04, section 3): how many synthetic negatives still sit on their real
negative in the t-SNE map, and how many jumped since the previous alpha.

    m = map_moves(synthetic_xy, negatives_xy, radius, previous_xy=prev)   # {"on": 3, "jumped": 2, "of": 8}
"""
from __future__ import annotations

import numpy as np


def map_radius(coords) -> float:
    """The map's median distance from its median point: coords (N, 2) -> a length (map units)."""
    xy = np.asarray(coords, dtype=float)
    return float(np.median(np.linalg.norm(xy - np.median(xy, axis=0), axis=1)))


def map_moves(synthetic_xy, negatives_xy, radius: float, previous_xy=None, on_tol: float = 0.02,
              jump_tol: float = 0.1) -> dict:
    """synthetic_xy, negatives_xy (K, 2): where the K synthetic negatives and their real negatives sit
    in the map; radius: the map's scale (``map_radius``). Distances are divided by ``radius`` once:
    "on" counts the synthetics within ``on_tol`` radius of their real negative, "jumped" those that
    moved more than ``jump_tol`` radius since ``previous_xy`` (None: no previous alpha -> None).
    Returns {"on": int, "jumped": int | None, "of": K, "offset": (K,) distances in radii}."""
    if radius <= 0:
        raise ValueError(f"radius {radius}: expected a positive map scale")
    syn, neg = np.asarray(synthetic_xy, dtype=float), np.asarray(negatives_xy, dtype=float)
    offset = np.linalg.norm(syn - neg, axis=1) / radius          # in radii
    jumped = None
    if previous_xy is not None:
        jumped = int((np.linalg.norm(syn - np.asarray(previous_xy, dtype=float), axis=1) / radius > jump_tol).sum())
    return {"on": int((offset < on_tol).sum()), "jumped": jumped, "of": int(len(offset)), "offset": offset}
