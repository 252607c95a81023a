"""The LLaMA-style decoder that the subnet trains, its named configs and its loss."""

from gauntlet.model.args import MODEL_CONFIGS, ModelArgs
from gauntlet.model.transformer import Transformer, build_model, causal_lm_loss, count_parameters

__all__ = [
    "MODEL_CONFIGS",
    "ModelArgs",
    "Transformer",
    "build_model",
    "causal_lm_loss",
    "count_parameters",
]
