"""Compact storage of a model's state dict inside a weights file.

Three storage kinds, chosen when a weights file is written:

- ``fp32``: every tensor as it is.
- ``fp16``: floating-point tensors rounded to fp16.
- ``int8``: 4-D convolution kernels as int8 with one fp32 scale per slice of the
  first dimension (symmetric, ``w = q * scale``); every other floating-point
  tensor as fp16.

In every kind the entropy coder's CDF tables are stored without their zero
padding: each ``*._quantized_cdf`` row keeps its first ``_cdf_length`` entries.

Whatever the kind, :func:`round_model_` first replaces the model's own values
with their stored values; :func:`pack_state` then keeps any tensor that is not
exactly representable in the compact form (a buffer rebuilt after rounding,
such as a scale table) at full precision. What :func:`unpack_state` gives back
is therefore exactly the model that built the entropy tables: encoder and
decoder use identical numbers and decoding stays exact. Storage only moves the
rate-distortion point, by a small measured amount (see the README).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

STORAGE_KINDS = ("fp32", "fp16", "int8")
_CDF = "_quantized_cdf"


def _is_int8_kernel(t: Tensor) -> bool:
    return t.is_floating_point() and t.dim() == 4


def _int8_encode(w: Tensor) -> tuple[Tensor, Tensor]:
    w = w.detach().float().cpu()
    peak = w.abs().flatten(1).amax(1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak))
    q = torch.round(w / scale.view(-1, 1, 1, 1)).clamp_(-127, 127).to(torch.int8)
    return q, scale


def _int8_decode(q: Tensor, scale: Tensor) -> Tensor:
    return q.float() * scale.float().view(-1, 1, 1, 1)


def _int8_exact(w: Tensor) -> bool:
    return torch.equal(_int8_decode(*_int8_encode(w)).to(w.dtype), w)


def _stored_float(t: Tensor, storage: str) -> Tensor:
    """The value a floating-point tensor has after a save/load round trip."""
    if storage == "int8" and _is_int8_kernel(t):
        return _int8_decode(*_int8_encode(t)).to(t.dtype)
    if storage in ("fp16", "int8"):
        return t.detach().half().to(t.dtype)
    return t.detach()


def check_storage(storage: str) -> str:
    if storage not in STORAGE_KINDS:
        raise ValueError(f"unknown weight storage {storage!r}; choose from {', '.join(STORAGE_KINDS)}")
    return storage


@torch.no_grad()
def round_model_(model: nn.Module, storage: str) -> None:
    """Give every floating-point parameter and buffer the value it will be stored as (in place)."""
    check_storage(storage)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not is_constant_bound(name):
            t.copy_(_stored_float(t, storage))


def is_constant_bound(name: str) -> bool:
    """compressai's ``LowerBound`` buffers: architecture constants, not learned values.

    They are kept exact: in fp16 the likelihood bound 1e-9 becomes 0, and a model
    trained further from such a file meets log(0) (files written before this rule
    hold the rounded values; ``--init`` restores the constants).
    """
    return name.endswith(".bound")


def pack_state(state: dict[str, Tensor], storage: str) -> dict[str, Any]:
    """A state dict (already rounded with :func:`round_model_`) in its stored form."""
    check_storage(storage)
    tensors: dict[str, Tensor] = {}
    int8: dict[str, dict[str, Tensor]] = {}
    cdfs: dict[str, dict[str, Any]] = {}
    for key, v in state.items():
        v = v.detach().cpu()
        if key.endswith(_CDF) and v.dim() == 2:
            lengths = state[key[: -len(_CDF)] + "_cdf_length"].cpu()
            rows = [v[i, : int(n)] for i, n in enumerate(lengths)]
            cdfs[key] = {"width": v.shape[1], "values": torch.cat(rows) if rows else v.new_zeros(0)}
        elif storage == "int8" and _is_int8_kernel(v) and _int8_exact(v):
            q, scale = _int8_encode(v)
            int8[key] = {"q": q, "scale": scale}
        elif storage in ("fp16", "int8") and v.is_floating_point() and torch.equal(v.half().to(v.dtype), v):
            tensors[key] = v.half()
        else:  # integers, and floats set after rounding (e.g. a rebuilt scale table): exact as they are
            tensors[key] = v.clone()
    return {"storage": storage, "tensors": tensors, "int8": int8, "cdf": cdfs}


def unpack_state(packed: dict[str, Any]) -> dict[str, Tensor]:
    """Inverse of :func:`pack_state`: fp32 floating-point tensors, padded CDF tables."""
    try:
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in packed["tensors"].items()}
        for key, e in packed["int8"].items():
            state[key] = _int8_decode(e["q"], e["scale"])
        for key, e in packed["cdf"].items():
            lengths = state[key[: -len(_CDF)] + "_cdf_length"]
            if int(lengths.sum()) != e["values"].numel() or (lengths.numel() and int(lengths.max()) > e["width"]):
                raise ValueError(f"{key}: CDF values do not match their lengths")
            table = torch.zeros(len(lengths), int(e["width"]), dtype=e["values"].dtype)
            start = 0
            for i, n in enumerate(lengths.tolist()):
                table[i, :n] = e["values"][start : start + n]
                start += n
            state[key] = table
    except (KeyError, TypeError, AttributeError, RuntimeError, IndexError) as exc:
        raise ValueError(f"malformed packed state ({type(exc).__name__}: {exc})") from None
    return state
