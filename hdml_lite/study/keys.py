"""The lab study's methods, claims and start values (names only: no other study module imported).

A regime is a family of presets named ``<regime>_<key>``: ``lab`` (the converged lab regime: a
pretrained small CNN fine-tuned to a plateau) or ``scratch`` (200 steps from scratch). Method
names in every CSV are ``<regime>_<key>`` with ``key`` in ``KEYS``.
"""
from __future__ import annotations

REGIMES = ("lab", "scratch")
BASELINES = ("contrastive", "triplet", "semihard", "lifted", "npair", "angular")
HDML_BASE = {"hdml_npair": "npair", "hdml_triplet": "triplet"}        # HDML key -> its base loss key
ABLATIONS = {"hdml_npair_nosoftmax": ("hdml.softmax=false",), "hdml_npair_norecon": ("hdml.recon=false",)}
WEIGHT_MATCHED = "hdml_npair_nosoftmax_wmatch"   # no J_soft, beta matched to full HDML's synthetic weight
HDC_BATCH = "contrastive_hdcbatch"                                    # contrastive at HDC's batch
KEY_METHODS = ("npair", "hdml_npair", "triplet", "hdml_triplet")     # headline: seeds_key .. max_seeds seeds
KEYS = BASELINES + ("hdml_triplet", "hdml_npair", "hdc", HDC_BATCH) + tuple(ABLATIONS) + (WEIGHT_MATCHED,)
KEY_SEEDS = ("hdml_npair_nosoftmax", WEIGHT_MATCHED)   # not headline, but 5 paired seeds: the weight-matched arm
CURVE_KEYS = ("npair", "hdml_npair") + tuple(ABLATIONS)              # evaluated along the final runs
MECHANISM_KEYS = ("hdml_npair", "hdml_triplet") + tuple(ABLATIONS) + (WEIGHT_MATCHED,)

# (claim, A, B) with A, B keys: the paper says A > B. The first two are the headline claims.
CLAIMS = (("HDML(N-pair) > N-pair", "hdml_npair", "npair"),
          ("HDML(triplet) > triplet", "hdml_triplet", "triplet"),
          ("HDML(N-pair) > HDML(N-pair) without softmax", "hdml_npair", "hdml_npair_nosoftmax"),
          ("HDML(N-pair) > HDML(N-pair) without softmax, weight matched", "hdml_npair", WEIGHT_MATCHED),
          ("HDML(N-pair) without softmax, weight matched > without softmax", WEIGHT_MATCHED, "hdml_npair_nosoftmax"),
          ("HDML(N-pair) without reconstruction > N-pair", "hdml_npair_norecon", "npair"),
          ("HDC > contrastive at HDC's batch", "hdc", HDC_BATCH))
HEADLINE_CLAIMS = 2

# The study's own start values (the first study's presets; never read back from presets that the
# study's choices rewrite): HDML's alpha during lr selection, the bn_stats of the alpha stage, and
# HDC's fractions during lr selection.
STARTS = {"lab": {"alpha": {"hdml_npair": 0.3, "hdml_triplet": 7.0}, "bn_stats": "official",
                  "fractions": (1.0, 0.5, 0.2)},
          "scratch": {"alpha": {"hdml_npair": 90.0, "hdml_triplet": 30.0}, "bn_stats": "official",
                      "fractions": (1.0, 0.5, 0.2)}}


def method_name(regime: str, key: str) -> str:
    return f"{regime}_{key}"


def method_key(name: str) -> str:
    """``lab_hdml_npair`` -> ``hdml_npair`` (any regime prefix removed)."""
    for r in REGIMES:
        if name.startswith(r + "_"):
            return name[len(r) + 1:]
    return name
