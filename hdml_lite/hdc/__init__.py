"""HDC, Hard-Aware Deeply Cascaded Embedding (Yuan, Yang, Zhang, ICCV 2017; METHOD §2).

- ``model.py``:  CascadeModel, one trunk and three heads of increasing depth
- ``loss.py``:   pair losses, hard selection and routing (top / nested), the cascade loss
- ``embed.py``:  weighted concatenation of the heads at test time
- ``method.py``: HDCMethod, the training step (Method contract)
"""
from .embed import HEAD_WEIGHTS, concat_heads
from .loss import LOSS_SCALES, ROUTINGS, cascade_loss, hdc_head_loss, num_kept, pair_losses, route, select_hard
from .method import PARAM_GROUPS, HDCMethod, hdc_param_groups
from .model import CascadeModel, GlobalHead, PooledHead, init_heads_from_aux

__all__ = ["HEAD_WEIGHTS", "concat_heads", "LOSS_SCALES", "ROUTINGS", "cascade_loss", "hdc_head_loss", "num_kept",
           "pair_losses", "route", "select_hard", "PARAM_GROUPS", "HDCMethod", "hdc_param_groups", "CascadeModel",
           "GlobalHead", "PooledHead", "init_heads_from_aux"]
