"""Loading a wav2vec2 CTC model for the CTC aligner: a torchaudio bundle or a local folder.

A local folder is a Hugging Face Wav2Vec2ForCTC checkpoint (config.json, vocab.json and
model.safetensors or pytorch_model.bin), read without the transformers package: torchaudio's
Wav2Vec2Model has the same layers under other names.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from transcriber.worker.pipeline.models import hub_offline
from transcriber.worker.pipeline.types import PipelineError

log = logging.getLogger(__name__)

# Hugging Face prefixes -> torchaudio's; keys under no prefix (masked_spec_embed, quantizer,
# pre-training heads) are not used for CTC and are dropped.
_RENAMES = (
    ("wav2vec2.feature_extractor.", "feature_extractor."),
    ("wav2vec2.feature_projection.", "encoder.feature_projection."),
    ("wav2vec2.encoder.", "encoder.transformer."),
    ("lm_head.", "aux."),
)
# Older checkpoints store the positional convolution's weight norm in the pre-2.1 torch form.
_WEIGHT_NORM = (
    ("weight_g", "parametrizations.weight.original0"),
    ("weight_v", "parametrizations.weight.original1"),
)


@dataclass
class CtcModel:
    model: torch.nn.Module
    labels: tuple[str, ...]
    blank: int
    sample_rate: int
    # Hugging Face models expect each input normalized to zero mean and unit variance.
    normalize: bool = False


def load_ctc_model(source: str, models_dir: Path) -> CtcModel:
    """Raises PipelineError MODEL_UNAVAILABLE with a plain message when it cannot be loaded."""
    folder = Path(source).expanduser()
    try:
        if folder.is_dir():
            return _from_folder(folder)
        return _from_bundle(source, models_dir)
    except PipelineError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The alignment model {source!r} could not be loaded.",
            f"{type(exc).__name__}: {exc}",
        ) from exc


def _from_bundle(name: str, models_dir: Path) -> CtcModel:
    import torchaudio.pipelines as pipelines

    bundle = getattr(pipelines, name, None)
    if not isinstance(bundle, pipelines.Wav2Vec2ASRBundle):
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"{name!r} is neither a model folder nor a torchaudio wav2vec2 ASR bundle "
            "(such as WAV2VEC2_ASR_BASE_960H or MMS_FA).",
            f"no folder {name} and no CTC bundle torchaudio.pipelines.{name}",
        )
    cache = models_dir / "torchaudio" / name
    # The bundle's private file name tells where torch.hub caches the weights.
    cached = cache / Path(str(bundle._path)).name
    if not cached.is_file() and hub_offline():
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The alignment model {name} is not on this server, and it is offline. "
            f"Put its weights file at {cached}, or use a local model folder.",
            f"missing {cached}",
        )
    options: dict[str, Any] = {"model_dir": str(cache), "progress": False}
    if isinstance(bundle, pipelines.Wav2Vec2FABundle):
        model = bundle.get_model(with_star=False, dl_kwargs=options)
        labels = bundle.get_labels(star=None)
    else:
        model = bundle.get_model(dl_kwargs=options)
        labels = bundle.get_labels()
    return CtcModel(model, tuple(labels), 0, int(bundle.sample_rate))


def _from_folder(folder: Path) -> CtcModel:
    from torchaudio.models import wav2vec2_model

    config = json.loads((folder / "config.json").read_text())
    vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text())
    labels = [""] * len(vocab)
    for token, index in vocab.items():
        labels[int(index)] = token
    model = wav2vec2_model(**torchaudio_params(config), aux_num_out=int(config["vocab_size"]))
    model.load_state_dict(from_hugging_face(_weights(folder)), strict=True)
    preprocessor = folder / "preprocessor_config.json"
    extra = json.loads(preprocessor.read_text()) if preprocessor.is_file() else {}
    return CtcModel(
        model,
        tuple(labels),
        int(config.get("pad_token_id", 0)),
        int(extra.get("sampling_rate", 16000)),
        bool(extra.get("do_normalize", True)),
    )


def torchaudio_params(config: dict[str, Any]) -> dict[str, Any]:
    """torchaudio.models.wav2vec2_model arguments from a Hugging Face config (for inference:
    every dropout is off)."""
    return {
        "extractor_mode": f"{config['feat_extract_norm']}_norm",
        "extractor_conv_layer_config": [
            (int(d), int(k), int(s))
            for d, k, s in zip(
                config["conv_dim"], config["conv_kernel"], config["conv_stride"], strict=True
            )
        ],
        "extractor_conv_bias": bool(config["conv_bias"]),
        "encoder_embed_dim": int(config["hidden_size"]),
        "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": int(config["num_conv_pos_embeddings"]),
        "encoder_pos_conv_groups": int(config["num_conv_pos_embedding_groups"]),
        "encoder_num_layers": int(config["num_hidden_layers"]),
        "encoder_num_heads": int(config["num_attention_heads"]),
        "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": int(config["intermediate_size"]),
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0,
        "encoder_layer_norm_first": bool(config["do_stable_layer_norm"]),
        "encoder_layer_drop": 0.0,
    }


def from_hugging_face(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Wav2Vec2ForCTC state dict under torchaudio's parameter names."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        renamed = next(
            (new + key[len(old) :] for old, new in _RENAMES if key.startswith(old)), None
        )
        if renamed is None:
            continue
        for old, new in _WEIGHT_NORM:
            if renamed.endswith(old):
                renamed = renamed[: -len(old)] + new
        out[renamed] = value
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    safetensors = folder / "model.safetensors"
    if safetensors.is_file():
        from safetensors.torch import load_file

        loaded: dict[str, torch.Tensor] = load_file(str(safetensors))
        return loaded
    # weights_only: a checkpoint file must not be able to run code.
    state: dict[str, torch.Tensor] = torch.load(
        folder / "pytorch_model.bin", map_location="cpu", weights_only=True
    )
    return state
