"""Shared test settings: tests run on CPU, few threads, headless matplotlib."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HDML_FAST", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

# Tiny training settings on the embedded glyphs, shared by trainer/CLI tests.
TINY = ["train.steps=6", "train.eval_every=3", "train.ckpt_every=2", "data.max_classes=10",
        "data.max_per_class=6", "data.batch_classes=4", "model.width=4", "model.pretrained=false", "model.embedding_size=8",
        "train.progress=false", "train.device=cpu", "hdml.block=2", "hdml.gen_hidden=16"]


@pytest.fixture
def tiny_overrides(tmp_path):
    return TINY + [f"train.out_dir={tmp_path / 'run'}"]
