"""A job's kept weights as a torch module, for predictions on the caller's own machine (`Client.load_model`)."""

from __future__ import annotations

import numpy as np

from core.spec.job import JobSpec, output_size
from workers.analyses.onnx import Servable
from workers.training.checkpoint import weights_from_bytes
from workers.training.model import build_model


def servable_from_weights(data: bytes) -> Servable:
    """The network the weights' model card describes, between its standardization and its probabilities or
    values: what the job's `model.onnx` computes, in torch."""
    weights, card = weights_from_bytes(data)
    spec = JobSpec.model_validate(card["spec"])
    input_shape = tuple(card["input_shape"])
    n_outputs = output_size(card["task"], spec.loss_spec, len(card["class_names"]))
    network = build_model(spec.model, input_shape, n_outputs)
    network.load_state_dict(weights)
    mean, std = (np.asarray(card[key], dtype=np.float32) for key in ("feature_mean", "feature_std"))
    return Servable(network, mean, std, card["task"])
