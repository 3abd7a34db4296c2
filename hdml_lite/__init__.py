"""hdml_lite: a teaching and reproduction kit for deep metric learning with hard examples.

- HDML, Hardness-Aware Deep Metric Learning (Zheng et al., CVPR 2019): ``hdml_lite.hdml``
- HDC, Hard-Aware Deeply Cascaded Embedding (Yuan et al., ICCV 2017): ``hdml_lite.hdc``

Where to look first: ``hdml_lite/hdml/augment.py`` makes the synthetic negatives.
"""
__version__ = "0.1.0"

# Register the built-in methods (train.method = baseline | hdml | hdc) in
# hdml_lite.training.method.METHOD_REGISTRY; the trainer reads only the registry.
from .training import method as _method  # noqa: E402,F401  (baseline)
from .hdml import method as _hdml_method  # noqa: E402,F401
from .hdc import method as _hdc_method  # noqa: E402,F401
