"""The LLaMA-style decoder that the subnet trains, its named configs and its loss."""

from gauntlet.model.args import MODEL_CONFIGS, ModelArgs
from gauntlet.model.export import export_cli, export_hf
from gauntlet.model.runtime import autocast, prepare_for_training
from gauntlet.model.transformer import (
    Transformer,
    build_model,
    causal_lm_loss,
    count_parameters,
    superposition_loss,
)

__all__ = [
    "MODEL_CONFIGS",
    "ModelArgs",
    "Transformer",
    "autocast",
    "build_model",
    "causal_lm_loss",
    "count_parameters",
    "export_cli",
    "export_hf",
    "prepare_for_training",
    "superposition_loss",
]
