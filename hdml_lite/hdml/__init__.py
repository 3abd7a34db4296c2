"""HDML, Hardness-Aware Deep Metric Learning (Zheng et al., CVPR 2019).

- ``augment.py``    the synthetic hard negatives (pure functions; change alpha here / in cfg.hdml.alpha)
- ``generator.py``  the generator G (z -> y) and the softmax classifier
- ``tracking.py``   J_avg / J_gen running means (block or epoch)
- ``objective.py``  J_recon, J_soft, J_gen, J_syn, J_metric from tensors
- ``method.py``     HDMLMethod: one forward pass, three optimizers
"""
from .augment import augment_npair, augment_triplet, pull_factor
from .generator import Generator, SoftmaxHead
from .method import HDMLMethod
from .objective import (generator_loss, metric_objective, npair_syn_loss, real_weight, recon_loss, soft_loss,
                        synthetic_weight)
from .tracking import LossTracker

__all__ = ["pull_factor", "augment_triplet", "augment_npair", "Generator", "SoftmaxHead", "LossTracker",
           "real_weight", "synthetic_weight", "metric_objective", "recon_loss", "soft_loss", "generator_loss",
           "npair_syn_loss", "HDMLMethod"]
