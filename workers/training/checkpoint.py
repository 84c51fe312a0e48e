"""Training state as plain tensors + JSON, and its safetensors encoding.

No pickle anywhere: a checkpoint is a flat `name → tensor` map (model, kept best weights, optimizer
tensors, RNG states as uint8 tensors) plus JSON metadata, so loading one can never run code. One
safetensors file holds both: the JSON rides in the header's `__metadata__` under the key `steadyfit`.
Python's JSON is used, so NaN and infinite metric values round-trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import safetensors.torch
import torch

META_KEY = "steadyfit"


@dataclass(frozen=True)
class Checkpoint:
    """The full training state after one epoch: enough for `train(..., resume=cp)` to continue exactly."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def to_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached CPU copies, safe to keep while training goes on."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def prefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": tensor for name, tensor in tensors.items()}


def unprefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {name[start:]: tensor for name, tensor in tensors.items() if name.startswith(prefix + ".")}


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The per-parameter optimizer state, split into tensors (`<index>.<name>`) and JSON values.

    Parameter groups are not saved: they come from the spec when the optimizer is rebuilt, and the
    engine sets the learning rate at the start of every epoch.
    """
    tensors: dict[str, torch.Tensor] = {}
    values: dict[str, dict[str, Any]] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().to("cpu", copy=True)
            else:
                values.setdefault(str(index), {})[name] = value
    return tensors, values


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], values: Mapping[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    for index, named in values.items():
        state.setdefault(int(index), {}).update(named)
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def rng_state(shuffle: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The random streams training draws from: torch's (init, dropout, noise), the shuffle, CUDA's."""
    states = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_state(shuffle: torch.Generator, device: torch.device, states: Mapping[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["torch"])
    shuffle.set_state(states["shuffle"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def checkpoint_to_bytes(checkpoint: Checkpoint) -> bytes:
    return _encode(checkpoint.tensors, checkpoint.meta)


def checkpoint_from_bytes(data: bytes) -> Checkpoint:
    tensors, meta = _decode(data)
    return Checkpoint(tensors=tensors, meta=meta)


def weights_to_bytes(weights: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> bytes:
    """A model's state dict and JSON metadata (e.g. the spec, the input shape) as one safetensors file."""
    return _encode(weights, metadata)


def weights_from_bytes(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return _decode(data)


def _encode(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> bytes:
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    return safetensors.torch.save(contiguous, metadata={META_KEY: json.dumps(meta)})


def _decode(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    header_size = int.from_bytes(data[:8], "little")  # safetensors: an 8-byte size, then the JSON header
    metadata = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    return safetensors.torch.load(data), json.loads(metadata.get(META_KEY, "{}"))
