"""Which runs the notebooks 02-05 use (their pinned copies are what ``hdml_lite.pinned`` loads).

    specs = notebook_runs()          # [RunSpec(key, preset, overrides, probe, keep_model, tsne)]

A run's ``key`` is its folder name under ``runs/notebooks/<budget>/`` (``notebook_config``'s naming:
``preset[__overrides]``, ``__probed`` added for a run trained with probes). The alpha sweep of
notebooks 03 and 04 is the one the notebooks build: ``sweep_alphas`` at the J_avg of the study
(``results/study.json``), plus the preset's own alpha.
"""
from __future__ import annotations

from dataclasses import dataclass

PINNED_BUDGET = "cpu"                          # the budget the pinned runs were trained at
RELEASED_FRACTIONS = "hdc.fractions=[1,0.5,0.2]"  # notebook 05's HDC: the released fractions (mining visible)


@dataclass(frozen=True)
class RunSpec:
    preset: str
    overrides: tuple = ()
    probe: str = ""            # "" | "hdc" | "hdml": trained with train_with_probes, probes pinned
    keep_model: bool = False   # pin the trained weights (notebook 04 embeds and explores with them)
    tsne: bool = False         # pin a t-SNE map of the test embeddings (notebook 04's one map per alpha)

    @property
    def key(self) -> str:
        from ..viz.notebook import run_key

        return run_key(self.preset, *self.overrides) + ("__probed" if self.probe else "")


def sweep_grid(j_avg: float | None = None) -> dict:
    """{target pull factor: alpha} of notebooks 03/04 (``sweep_alphas``). Unless ``j_avg`` is given:
    the grid the pinned runs were trained on (their index's ``meta["sweep"]``, built at the first
    study's J_avg for lab_hdml_npair), so that the notebooks and a regeneration of the pinned set keep
    one grid; without a pinned set, built at the J_avg of ``results/study.json``."""
    from ..presets import get_preset
    from ..viz.notebook import results_dir, sweep_alphas
    from ..viz.results import load_settings

    if j_avg is None:
        from . import _store

        store = _store()
        pinned = (store[0].get("meta") or {}).get("sweep") if store else None
        if pinned:
            return {float(t): float(a) for t, a in pinned.items()}
        j_avg = ((load_settings(results_dir()) or {}).get("j_avg") or {}).get("lab_hdml_npair")
    if not j_avg:
        raise ValueError("results/study.json has no j_avg for lab_hdml_npair: the sweep grid needs it")
    return sweep_alphas(float(j_avg), preset_alpha=float(get_preset("lab_hdml_npair").hdml.alpha))


def grid_j_avg(grid: dict) -> float:
    """The J_avg at which ``grid`` ({target pull factor: alpha}) was built: -alpha / ln(target) at its
    first target strictly between 0 and 1 (exp(-alpha / J_avg) = target)."""
    import math

    t, a = next((t, a) for t, a in sorted(grid.items(), reverse=True) if 0 < t < 1 and a > 0)
    return -a / math.log(t)


def notebook_runs() -> list[RunSpec]:
    """Every run the notebooks 02-05 train, in the order they first need them."""
    from ..presets import get_preset

    preset_alpha = float(get_preset("lab_hdml_npair").hdml.alpha)
    specs = [RunSpec("lab_npair"),                                       # 02, 03, 05
             RunSpec("lab_hdml_npair", keep_model=True),                 # 02-05; model: 04's explorer
             RunSpec("lab_hdml_npair", ("hdml.softmax=false",)),         # 03
             RunSpec("lab_hdml_npair", ("hdml.recon=false",))]           # 03
    for a in sweep_grid().values():                                      # 03 and 04 (t-SNE maps)
        if a != preset_alpha:
            specs.append(RunSpec("lab_hdml_npair", (f"hdml.alpha={a:g}",), tsne=True))
    specs += [RunSpec("lab_hdc", (RELEASED_FRACTIONS,), probe="hdc"),    # 05
              RunSpec("lab_hdml_npair", (), probe="hdml"),               # 05
              RunSpec("scratch_hdml_npair"),                             # 05
              RunSpec("lab_contrastive_hdcbatch")]                       # 05
    return specs
