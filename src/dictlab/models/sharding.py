"""A latent-sharded dictionary made whole again (for export and evaluation after latent-parallel training)."""

import torch
import torch.distributed as dist

from dictlab.distributed.mesh import Mesh
from dictlab.models.dictionary import SparseDictionary


@torch.no_grad()
def whole_dictionary(model: SparseDictionary) -> SparseDictionary | None:
    """The unsharded dictionary on rank 0 of the run (None on every other rank); ``model`` itself when it is whole.

    Collective over ``model.mesh.tp``: each tensor is gathered in turn onto the shard-0 process of every replica,
    so that process holds the whole dictionary plus one gathered tensor at a time. The result computes alone
    (``Mesh.alone()``), on the CPU.
    """
    if model.latents.whole:
        return model
    tp = model.mesh.tp
    dims = model.latent_dims()
    keep = tp.rank == 0 and model.mesh.dp.rank == 0
    state = {}
    for name, tensor in model.state_dict().items():
        if name not in dims:
            state[name] = tensor.cpu().clone()
            continue
        local = tensor.contiguous()
        parts = [torch.empty_like(local) for _ in range(tp.size)] if tp.rank == 0 else None
        dist.gather(local, parts, group=tp.handle, group_dst=0)
        if keep:
            assert parts is not None
            state[name] = torch.cat(parts, dim=dims[name]).cpu()
    if not keep:
        return None
    with torch.device("meta"):  # no second copy of the weights: the gathered tensors become the parameters
        whole = SparseDictionary(model.cfg, mesh=Mesh.alone())
    whole.load_state_dict(state, assign=True)
    whole.train(model.training)
    return whole
