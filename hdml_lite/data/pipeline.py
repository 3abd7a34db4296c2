"""Training batches through a torch DataLoader, each a pure function of (seed, step).

    batches = TrainBatches(train_ds, sampler, cfg.data, in_channels, seed, device, start, steps)
    for step in range(start, steps):
        x, y = batches.get(step)       # x (B, C, S, S) float on ``device``, y (B,) long

- The loader's "dataset" maps a step to its batch: ``sampler.batch(step)`` (indices,
  a pure function of (seed, step)), each image resized once (decoded with PIL and
  resized on uint8, or read from the pre-resized cache), stacked to (B, C, R, R).
  ``data.num_workers`` processes prepare the next batches while the model trains
  (0: in-process); pinned memory on CUDA.
- Random crop, flip and normalisation run as one batched op on the training device
  (``transforms.augment_batch``), with offsets drawn from a generator seeded by
  (seed, step) (``step_generator``): the same batch whatever the worker count, the
  device or where a resumed run starts. torch's global RNG is not touched.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .base import ArrayDataset, CorruptImageError
from .transforms import augment_batch, crop_params, resize_image, transform_spec


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of the crops and flips of ``step``'s batch."""
    state = np.random.SeedSequence([seed, step, 0xDA7A]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def load_resized(ds, indices: list[int], resize: int) -> torch.Tensor:
    """Images ``indices`` of ``ds`` resized to (resize, resize): (B, C, R, R), uint8 for image files
    (one read of the cache when the dataset has one), float in [0, 1] for in-memory arrays."""
    cache = getattr(ds, "cache", None)
    if cache is not None and cache.resize == resize:
        return cache.batch([ds.paths[i] for i in indices])
    if isinstance(ds, ArrayDataset):        # in memory: one resize call for the batch
        return resize_image(ds.images[torch.as_tensor(indices, dtype=torch.long)].float() / 255.0, resize)
    return torch.stack([ds.resized(i, resize) for i in indices])


class StepBatches(Dataset):
    """step -> (step, images (B, C, R, R), labels (B,)); an unreadable image gives
    (step, message, None), re-raised in the main process as one clear line."""

    def __init__(self, ds, sampler, resize: int):
        self.ds, self.sampler, self.resize = ds, sampler, resize

    def __getitem__(self, step: int):
        idx = self.sampler.batch(step)
        try:
            x = load_resized(self.ds, idx, self.resize)
        except CorruptImageError as exc:
            return step, str(exc), None
        return step, x, torch.as_tensor(self.ds.labels[idx], dtype=torch.long)


def augment(x: torch.Tensor, data_cfg, in_channels: int, seed: int, step: int, train: bool = True) -> torch.Tensor:
    """Resized batch (B, C, R, R) -> network input (B, in_channels, S, S) on x's device, with the
    crops/flips of (seed, step) (train) or centre crops (test)."""
    mean, std, flip = transform_spec(data_cfg.transforms)
    top, left, flips = crop_params(step_generator(seed, step), len(x), data_cfg.resize, data_cfg.image_size,
                                   train, flip)
    if x.device.type == "cuda":      # queued copies from pinned memory: no wait for the GPU
        top, left, flips = (t.pin_memory().to(x.device, non_blocking=True) for t in (top, left, flips))
    return augment_batch(x, top, left, flips, data_cfg.image_size, mean, std, in_channels)


def fetch_batch(ds, indices: list[int], data_cfg, in_channels: int, seed: int, step: int,
                device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """In-process: the training batch the trainer sees at ``step`` for these indices (x, y) on ``device``."""
    x = load_resized(ds, indices, data_cfg.resize).to(device)
    y = torch.as_tensor(ds.labels[indices], dtype=torch.long, device=device)
    return augment(x, data_cfg, in_channels, seed, step), y


class TrainBatches:
    """The batches of steps ``start .. steps-1``, in order, on ``device`` (see the module docstring)."""

    def __init__(self, ds, sampler, data_cfg, in_channels: int, seed: int, device, start: int, steps: int):
        self.data_cfg, self.in_channels, self.seed = data_cfg, in_channels, seed
        self.device = torch.device(device)
        workers = data_cfg.num_workers
        self.loader = DataLoader(
            StepBatches(ds, sampler, data_cfg.resize), sampler=range(start, steps), batch_size=None,
            num_workers=workers, persistent_workers=workers > 0, pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if workers else None,
            generator=torch.Generator().manual_seed(seed))   # keeps torch's global RNG untouched
        self._it = iter(self.loader)

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step`` (the next one): x (B, in_channels, S, S) float, y (B,) long."""
        got, x, y = next(self._it)
        if y is None:
            raise CorruptImageError(x)
        if got != step:
            raise RuntimeError(f"batch order: expected step {step}, the loader gave step {got}")
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        return augment(x, self.data_cfg, self.in_channels, self.seed, step), y

    def close(self) -> None:
        """Stop the workers now (the trainer calls this at the end of a run, also when it fails);
        without it, persistent workers would live until garbage collection. Idempotent."""
        it, self._it, self.loader = self._it, None, None
        shutdown = getattr(it, "_shutdown_workers", None)   # torch's multi-process iterator
        if shutdown is not None:
            shutdown()
