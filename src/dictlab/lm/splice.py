"""Splice a replacement into a model's forward pass: the output of one module is replaced at chosen positions.

A replacement maps the hidden states of the kept positions, [n, d], to new ones of the same shape: a dictionary's
reconstruction (``reconstruct_with``), zeros (``zero_ablation``) or a fixed vector (``mean_ablation``).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from dictlab.lm.modules import output_tensor, replace_output
from dictlab.models.dictionary import SparseDictionary

Replacement = Callable[[Tensor], Tensor]
"""``replace(h) -> h'``: hidden states [n, d] of the kept positions to their replacements [n, d]."""

Recorder = Callable[[Tensor, Tensor, Tensor], None]
"""``record(x, x_hat, codes)``: called by ``reconstruct_with`` on every batch (x, x_hat: [n, d]; codes: [n, d_sae])."""


Edit = Callable[[Tensor], Tensor | None]
"""``edit(h) -> h' | None``: a module's whole output tensor [batch, seq, d] to its replacement (None: unchanged)."""


@contextmanager
def edited(model: nn.Module, module_name: str, edit: Edit) -> Iterator[None]:
    """Within the context, the output tensor h [batch, seq, d] of ``model.get_submodule(module_name)`` is replaced
    by ``edit(h)`` on every forward pass (the output is returned as it was when ``edit`` returns None). The output
    keeps its structure (tensor or tuple); the hook is removed on exit, also when the body raises."""
    module = model.get_submodule(module_name)

    def hook(_module: nn.Module, _args: object, output: object) -> object:
        h = output_tensor(output)
        if h.dim() != 3:
            raise ValueError(f"{module_name} outputs shape {list(h.shape)}; splicing needs [batch, seq, d]")
        new = edit(h)
        return output if new is None else replace_output(output, new)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def keep_mask(h: Tensor, keep: Tensor | None, module_name: str) -> Tensor:
    """``keep`` [batch, seq] on h's device (all True when None); ValueError unless it matches h [batch, seq, d]."""
    mask = torch.ones(h.shape[:-1], dtype=torch.bool, device=h.device) if keep is None else keep.to(h.device)
    if mask.shape != h.shape[:-1]:
        raise ValueError(f"keep has shape {list(mask.shape)} but {module_name} outputs {list(h.shape)}")
    return mask.bool()


@contextmanager
def spliced(model: nn.Module, module_name: str, replace: Replacement, keep: Tensor | None = None) -> Iterator[None]:
    """Within the context, the output h [batch, seq, d] of ``model.get_submodule(module_name)`` is replaced by
    ``replace(h[keep])`` at the positions where ``keep`` [batch, seq] is True; other positions are left untouched
    (``keep=None`` replaces every position). The output keeps its structure (tensor or tuple); the hook is
    removed on exit, also when the body raises.

    ``keep`` must match the batch and sequence shape of every forward pass run inside the context.
    """

    def edit(h: Tensor) -> Tensor | None:
        mask = keep_mask(h, keep, module_name)
        if not mask.any():
            return None
        rows = h[mask]
        new_rows = replace(rows)
        if new_rows.shape != rows.shape:
            raise ValueError(f"the replacement returned shape {list(new_rows.shape)} for input {list(rows.shape)}")
        new = h.clone()
        new[mask] = new_rows.to(dtype=h.dtype, device=h.device)
        return new

    with edited(model, module_name, edit):
        yield


def check_sae(dictionary: SparseDictionary, width: int | None = None, module_name: str | None = None) -> None:
    """Raise ValueError unless ``dictionary`` is an SAE (kind "sae", d_in == d_out) of input width ``width`` (the
    output width of the module ``module_name``, named in the message when given)."""
    cfg = dictionary.cfg
    if cfg.kind != "sae" or cfg.d_in != cfg.d_out:
        raise ValueError(
            f"splicing needs an SAE that reconstructs its input (kind 'sae', d_in == d_out); got kind {cfg.kind!r} "
            f"with d_in={cfg.d_in}, d_out={cfg.d_out}"
        )
    if width is not None and cfg.d_in != width:
        of = f" of {module_name}" if module_name else ""
        raise ValueError(f"the dictionary's d_in ({cfg.d_in}) does not match the module width ({width}){of}")


def reconstruct_with(dictionary: SparseDictionary, record: Recorder | None = None) -> Replacement:
    """The replacement x [n, d] -> dictionary(x) [n, d], computed in the dictionary's dtype and device and cast back.

    ``record(x, x_hat, codes)`` (in the dictionary's dtype/device) is called on every batch when given, e.g.
    ``ReconstructionStats().update``. Put the dictionary in eval mode first (BatchTopK uses its learned threshold
    there; in training mode it would also update it).
    """
    check_sae(dictionary)
    reference = dictionary.W_enc

    def replace(x: Tensor) -> Tensor:
        check_sae(dictionary, x.shape[-1])
        x_in = x.to(dtype=reference.dtype, device=reference.device)
        codes = dictionary.encode(x_in)
        x_hat = dictionary.decode(codes)
        if record is not None:
            record(x_in, x_hat, codes)
        return x_hat.to(dtype=x.dtype, device=x.device)

    return replace


def zero_ablation(x: Tensor) -> Tensor:
    """The replacement x [n, d] -> zeros [n, d]."""
    return torch.zeros_like(x)


def mean_ablation(mean: Tensor) -> Replacement:
    """The replacement x [n, d] -> ``mean`` [d] repeated on every row."""
    if mean.dim() != 1:
        raise ValueError(f"mean must have shape [d], got {list(mean.shape)}")

    def replace(x: Tensor) -> Tensor:
        if x.shape[-1] != mean.shape[0]:
            raise ValueError(f"mean has width {mean.shape[0]} but the module outputs width {x.shape[-1]}")
        return mean.to(dtype=x.dtype, device=x.device).expand_as(x).clone()

    return replace
