"""Image transforms.

- ``paper`` (HDML_SPEC 1.7): resize to 256x256, random 227 crop, random horizontal
  flip; test: centre 227 crop. ImageNet normalisation (the backbones' weights need it).
- ``small``: for the embedded glyphs and other small images: resize to ``resize``,
  random ``image_size`` crop, no flip (a mirrored glyph is another character);
  test: centre crop. Normalised to mean 0.5, std 0.5.
- ``paper_noflip``: ``paper`` without mirroring (HDC's released training).

Both accept a PIL image or a float tensor (C, H, W) in [0, 1].
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _channels(c: int):
    """Repeat a 1-channel image to 3 channels (a grey image into an ImageNet backbone)."""
    return v2.Lambda(lambda x: x.expand(3, -1, -1) if (c == 3 and x.shape[0] == 1) else x)


def build_transforms(kind: str, train: bool, resize: int, image_size: int, in_channels: int):
    if kind in ("paper", "paper_noflip"):
        mean, std, flip = IMAGENET_MEAN, IMAGENET_STD, kind == "paper"
    elif kind == "small":
        mean, std, flip = (0.5,) * 3, (0.5,) * 3, False
    else:
        raise ValueError(f"data.transforms={kind!r}; expected paper, paper_noflip or small")
    if image_size > resize:
        raise ValueError(f"data.image_size={image_size} is larger than data.resize={resize}; expected image_size <= resize")
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize((resize, resize), antialias=True)]
    if train:
        steps.append(v2.RandomCrop(image_size))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps.append(v2.CenterCrop(image_size))
    steps += [_channels(in_channels), v2.Normalize(mean[:in_channels], std[:in_channels])]
    return v2.Compose(steps)
