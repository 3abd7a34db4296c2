"""hdml_lite: a teaching and reproduction kit for deep metric learning with hard examples.

- HDML, Hardness-Aware Deep Metric Learning (Zheng et al., CVPR 2019): ``hdml_lite.hdml``
- HDC, Hard-Aware Deeply Cascaded Embedding (Yuan et al., ICCV 2017): ``hdml_lite.hdc``

Where to look first: ``hdml_lite/hdml/augment.py`` makes the synthetic negatives.
"""
__version__ = "0.1.0"
