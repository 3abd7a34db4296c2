"""One palette for every figure of the kit: one colour per method, one per role, none shared.

    color_for("lab_hdml_npair")          # '#332288' (also "HDML (N-pair)", "scratch_hdml_npair", ...)
    color_for("HDML without J_soft")     # '#CC79A7'
    ROLE_COLORS["synthetic"]             # the synthetic negative z^ in the geometric figures

Methods: a baseline is light and its HDML version dark, in a neighbouring but different hue, so
that the two differ in lightness as well as hue (readable in grey print and for colour-blind
readers; tests/test_figures_readable.py measures both in CIELAB): N-pair sky blue / HDML(N-pair)
indigo, triplet orange / HDML(triplet) vermillion. Colours come from the
Okabe-Ito and Paul Tol palettes (readable for colour-blind readers). Roles (anchor,
positive, real negative, synthetic and generated negative) use colours no method uses,
and plots of quantities that are not methods (J_avg against J_gen, ...) use black and
greys with line styles (``SERIES``), so that a colour never means two things.
"""
from __future__ import annotations

import re

METHOD_COLORS = {
    "npair": "#56B4E9",                   # sky blue
    "hdml_npair": "#332288",              # indigo (dark): L* 22 against N-pair's 70
    "triplet": "#E69F00",                 # orange
    "hdml_triplet": "#D55E00",            # vermillion
    "contrastive": "#999933",             # olive
    "contrastive_hdcbatch": "#666633",    # dark olive: contrastive on HDC's batches (HDC's baseline)
    "semihard": "#DDCC77",                # sand
    "lifted": "#882255",                  # wine
    "angular": "#44AA99",                 # teal
    "hdc": "#009E73",                     # bluish green
    "hdml_npair_nosoftmax": "#CC79A7",    # reddish purple
    "hdml_npair_nosoftmax_wmatch": "#EE3377",   # magenta: without J_soft, synthetic weight matched
    "hdml_npair_norecon": "#117733",      # dark green
}

ROLE_COLORS = {
    "anchor": "#000000",                  # black (a star)
    "positive": "#6E6E6E",                # dark grey (the anchor's class)
    "negative": "#CC6677",                # rose: a real negative (and its class)
    "synthetic": "#AA4499",               # purple: a synthetic negative z^ (augmentation)
    "generated": "#997700",               # ochre: a generated, re-embedded negative z~ = g(G(z^))
    "other": "#BBBBBB",                   # light grey: other classes, background points
}

# Classes highlighted in a t-SNE map (Paul Tol's "light" scheme; each is labelled with its class
# name on the map, so these colours mean "this class" only in that map); other classes: "other"
CLASS_COLORS = ("#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00")

# HDC's heads 1-3: light to dark shades of HDC's colour (deeper head, darker)
HDC_HEAD_COLORS = ("#7FCFB9", "#009E73", "#00553D")

# Sizes for a laptop screen (tests/test_figures_readable.py): no figure wider than FIG_MAX_W inches
# (960 px at matplotlib's default 100 dpi, legends and titles included), legends at LEGEND_PT or more
FIG_MAX_W = 9.6
LEGEND_PT = 9

# Series that are not methods (J_avg vs J_gen, loss terms): black and greys, told apart by line style
SERIES = (("#000000", "-"), ("#6E6E6E", "--"), ("#000000", ":"), ("#9A9A9A", "-."), ("#3C3C3C", (0, (5, 1, 1, 1))))

# When a label names no known method (e.g. "seed 1"): greys, then the methods' colours are NOT reused
FALLBACK = ("#000000", "#6E6E6E", "#9A9A9A", "#3C3C3C", "#C4C4C4")

_ABLATIONS = (("nosoftmax_wmatch", ("wmatch", "weight matched", "weight-matched")),
              ("nosoftmax", ("nosoftmax", "no softmax", "without softmax", "w/o softmax", "without j_soft",
                             "w/o j_soft", "softmax=false")),
              ("norecon", ("norecon", "no recon", "without recon", "w/o recon", "without j_recon", "w/o j_recon",
                           "recon=false")))
# matched against the lower-cased name with "_" read as a space
_LOSSES = (("contrastive_hdcbatch", r"contrastive.*hdc"), ("hdc", r"\bhdc\b"), ("npair", r"\bn[- ]?pairs?\b"), ("semihard", r"semi[- ]?hard"),
           ("triplet", r"triplet"), ("contrastive", r"contrastive"), ("lifted", r"lifted"), ("angular", r"angular"))


def method_key(name: str) -> str | None:
    """The METHOD_COLORS key a run, preset or display name refers to, or None.

    ``lab_hdml_npair``, ``scratch_hdml_npair``, ``HDML (N-pair)`` -> "hdml_npair";
    ``HDML without J_soft`` (N-pair is the default loss of the ablations) -> "hdml_npair_nosoftmax".
    """
    s = str(name).lower().replace("_", " ")
    s = re.sub(r"\s+", " ", s)
    hdml = "hdml" in s
    loss = next((k for k, pat in _LOSSES if re.search(pat, s)), None)
    if loss in ("hdc", "contrastive_hdcbatch"):
        return loss
    for suffix, words in _ABLATIONS:
        if hdml and any(w.replace("_", " ") in s for w in words):
            return f"hdml_npair_{suffix}"
    if hdml:
        loss = loss or "npair"
        key = f"hdml_{loss}"
        return key if key in METHOD_COLORS else None
    return loss


def color_for(name: str, index: int | None = None) -> str:
    """The colour of the method ``name`` names (see ``method_key``).

    Unknown names: ``FALLBACK[index]`` when an index is given (greys, never a method's
    colour), else a KeyError naming the label.
    """
    key = method_key(name)
    if key is not None:
        return METHOD_COLORS[key]
    if index is not None:
        return FALLBACK[index % len(FALLBACK)]
    raise KeyError(f"color_for({name!r}): not a method name; expected one of {', '.join(METHOD_COLORS)}")
