"""Image transforms.

- ``paper`` (METHOD §1.7): resize to 256x256, random 227 crop, random horizontal
  flip; test: centre 227 crop. ImageNet normalisation (the backbones' weights need it).
- ``small``: for the embedded glyphs and other small images: resize to ``resize``,
  random ``image_size`` crop, no flip (a mirrored glyph is another character);
  test: centre crop. Normalised to mean 0.5, std 0.5.
- ``paper_noflip``: ``paper`` without mirroring (HDC's released training).

Image files are resized on uint8 (PIL), before any float conversion, as the
released pipelines did; float tensors (C, H, W) in [0, 1] (the embedded glyphs)
are resized in float.

Two ways to apply them:

- ``build_transforms``: per image, PIL image or tensor in, network input out
  (evaluation; training crops then use torch's global RNG).
- ``resize_image`` + ``crop_params`` + ``augment_batch``: what training uses. Images
  are resized once (per image, or read from the pre-resized cache), stacked, and
  cropped/flipped/normalised as one batch on the training device, with crop offsets
  and flips drawn from a generator seeded by (seed, step): the batch is a pure
  function of (seed, step), whatever the number of DataLoader workers or the device.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def transform_spec(kind: str) -> tuple[tuple, tuple, bool]:
    """``kind`` -> (mean (3,), std (3,), random horizontal flip?)."""
    if kind in ("paper", "paper_noflip"):
        return IMAGENET_MEAN, IMAGENET_STD, kind == "paper"
    if kind == "small":
        return (0.5,) * 3, (0.5,) * 3, False
    raise ValueError(f"data.transforms={kind!r}; expected paper, paper_noflip or small")


def _check_sizes(resize: int, image_size: int) -> None:
    if image_size > resize:
        raise ValueError(f"data.image_size={image_size} is larger than data.resize={resize}; "
                         f"expected image_size <= resize")


def _channels(c: int):
    """Repeat a 1-channel image to 3 channels (a grey image into an ImageNet backbone)."""
    return v2.Lambda(lambda x: x.expand(3, -1, -1) if (c == 3 and x.shape[0] == 1) else x)


def build_transforms(kind: str, train: bool, resize: int, image_size: int, in_channels: int):
    """Per-image transform: PIL image, uint8 tensor (C, H, W) or float tensor in [0, 1] ->
    normalised float (in_channels, image_size, image_size). The resize comes first, so PIL
    images and uint8 tensors are resized on uint8; a uint8 input already at ``resize`` (a
    cached image) is not resized again."""
    mean, std, flip = transform_spec(kind)
    _check_sizes(resize, image_size)
    steps = [v2.Resize((resize, resize), antialias=True), v2.ToImage()]
    if train:
        steps.append(v2.RandomCrop(image_size))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps.append(v2.CenterCrop(image_size))
    steps += [v2.ToDtype(torch.float32, scale=True), _channels(in_channels),
              v2.Normalize(mean[:in_channels], std[:in_channels])]
    return v2.Compose(steps)


def resize_image(img, resize: int) -> torch.Tensor:
    """PIL image -> uint8 (C, resize, resize) (PIL's antialiased bilinear, as ``build_transforms``);
    float tensor (C, H, W) in [0, 1] -> float (C, resize, resize)."""
    if isinstance(img, Image.Image):
        a = np.array(F.resize(img, [resize, resize], antialias=True))     # (R, R[, C]) uint8, writable
        a = a[:, :, None] if a.ndim == 2 else a
        return torch.from_numpy(a).permute(2, 0, 1).contiguous()
    return F.resize(img, [resize, resize], antialias=True)


def crop_params(generator: torch.Generator, n: int, resize: int, image_size: int,
                train: bool, flip: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop offsets and flips for ``n`` images: (top (n,), left (n,), flip (n,) bool), drawn
    from ``generator`` (train) or the centre crop without flips (test)."""
    _check_sizes(resize, image_size)
    span = resize - image_size + 1
    if not train:
        c = torch.full((n,), (resize - image_size) // 2, dtype=torch.long)  # torchvision's centre crop
        return c, c.clone(), torch.zeros(n, dtype=torch.bool)
    top = torch.randint(0, span, (n,), generator=generator)
    left = torch.randint(0, span, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    return top, left, flips


@functools.lru_cache(maxsize=32)
def _mean_k(mean: tuple, std: tuple, c_out: int, scale: float, dev: torch.device):
    """(mean * scale, 1 / (std * scale)) as (c_out, 1, 1) float32 on ``dev``, made once per device
    (a copy to a GPU per batch would wait for the GPU each time). Read-only."""
    m = (torch.tensor(mean, dtype=torch.float32) * scale).view(c_out, 1, 1).to(dev)
    k = 1.0 / (torch.tensor(std, dtype=torch.float32) * scale).view(c_out, 1, 1).to(dev)
    return m, k


def augment_batch(x: torch.Tensor, top, left, flips, image_size: int, mean, std,
                  out_channels: int, gather: bool | None = None) -> torch.Tensor:
    """Crop, flip and normalise a batch on its device.

    x: (B, C, R, R) uint8 (scaled by 1/255) or float in [0, 1]; top, left, flips: (B,) from
    ``crop_params``. Returns float (B, out_channels, image_size, image_size), ``(x - mean) / std``;
    a 1-channel batch is repeated to 3 channels when ``out_channels`` is 3.
    gather: one indexing op for the whole batch (default on accelerators) instead of a loop
    over images (default on CPU, where it stays in cache); both give the same values.
    """
    B, C = x.shape[:2]
    s, dev = image_size, x.device
    c_out = 3 if (out_channels == 3 and C == 1) else C
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    m, k = _mean_k(tuple(mean[:c_out]), tuple(std[:c_out]), c_out, scale, dev)
    if gather is None:
        gather = dev.type != "cpu"
    if gather:
        ar = torch.arange(s, device=dev)
        top, left, flips = top.to(dev), left.to(dev), flips.to(dev)
        rows = top[:, None] + ar                                           # (B, s)
        cols = left[:, None] + torch.where(flips[:, None], s - 1 - ar, ar)  # (B, s), mirrored if flipped
        crops = x[torch.arange(B, device=dev)[:, None, None, None], torch.arange(C, device=dev)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]           # (B, C, s, s)
        return torch.sub(crops, m).mul_(k)
    out = torch.empty((B, c_out, s, s), dtype=torch.float32, device=dev)
    for b, (t, l, f) in enumerate(zip(top.tolist(), left.tolist(), flips.tolist())):
        patch = x[b, :, t:t + s, l:l + s]
        torch.sub(patch.flip(-1) if f else patch, m, out=out[b]).mul_(k)
    return out
