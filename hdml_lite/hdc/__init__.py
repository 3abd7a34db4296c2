"""HDC, Hard-Aware Deeply Cascaded Embedding (Yuan, Yang, Zhang, ICCV 2017; HDML_SPEC section 2).

- ``model.py``:  CascadeModel, one trunk and three heads of increasing depth
- ``loss.py``:   pair losses, hard selection and routing (top / nested), the cascade loss
- ``embed.py``:  weighted concatenation of the heads at test time
- ``method.py``: HDCMethod, the training step (Method contract)
"""
from .embed import HEAD_WEIGHTS, concat_heads
from .loss import ROUTINGS, cascade_loss, hdc_head_loss, num_kept, pair_losses, route, select_hard
from .method import HDCMethod
from .model import CascadeModel, GlobalHead, PooledHead

__all__ = ["HEAD_WEIGHTS", "concat_heads", "ROUTINGS", "cascade_loss", "hdc_head_loss", "num_kept", "pair_losses",
           "route", "select_hard", "HDCMethod", "CascadeModel", "GlobalHead", "PooledHead"]
