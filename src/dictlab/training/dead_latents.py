"""Dead latents: firing statistics, the AuxK loss of the TopK family, and Bricken-style resampling."""

import torch
from torch import Tensor

from dictlab.distributed import all_reduce_
from dictlab.distributed.autograd import sum_partials
from dictlab.distributed.mesh import Group
from dictlab.distributed.selection import row_top_entries
from dictlab.models.dictionary import SparseDictionary
from dictlab.models.sparse_latents import ActiveLatents, sparse_decode


class FiringTracker:
    """Counts, per latent, the training samples seen since it last fired ([d_sae] int64)."""

    def __init__(self, d_sae: int, window: int, device: str | torch.device = "cpu") -> None:
        self.window = window
        self.samples_since_fired = torch.zeros(d_sae, dtype=torch.long, device=device)

    def update(self, fired: Tensor, n_samples: int) -> None:
        """Record a batch of ``n_samples`` in which the latents of ``fired`` ([d_sae] bool) were nonzero."""
        self.samples_since_fired += n_samples
        self.samples_since_fired.masked_fill_(fired, 0)  # not index_put with a mask: that reads its size back

    def dead_mask(self) -> Tensor:
        """[d_sae] bool: silent for at least ``window`` samples."""
        return self.samples_since_fired >= self.window

    def dead_fraction(self, shards: Group | None = None) -> float:
        """Dead fraction of the dictionary's latents (over every latent shard in ``shards``, if given)."""
        if shards is None or shards.size == 1:
            return self.dead_mask().float().mean().item()
        counts = torch.tensor([self.dead_mask().sum().item(), self.samples_since_fired.numel()], dtype=torch.float64)
        dead, total = all_reduce_(counts, group=shards).tolist()
        return dead / total

    def state_dict(self) -> dict[str, Tensor]:
        return {"samples_since_fired": self.samples_since_fired.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.samples_since_fired.copy_(state["samples_since_fired"])


def auxk_loss(
    model: SparseDictionary,
    x_in: Tensor,
    pre: Tensor,
    residual: Tensor,
    dead: Tensor,
    k_aux: int,
    *,
    fixed_width: bool = False,
) -> Tensor:
    """AuxK loss (Gao et al., arXiv 2406.04093): dead latents reconstruct the main model's residual.

    Args:
        x_in: the batch's inputs [batch, d_in].
        pre: their pre-activations [batch, d_sae] (used to select; gradient flows through the selected entries).
        residual: x_out − x̂ [batch, d_out]; treated as a constant target.
        dead: [d_sae] bool mask of dead latents.
        k_aux: number of dead latents each sample may use.
        fixed_width: select without reading anything back to the host (for CUDA, where a read stalls the queue):
            every row takes a fixed k_aux entries of ``pre`` with the live latents masked to −inf, and the live
            ones it takes when fewer than k_aux are dead get weight 0. Otherwise the dead count is read and the
            selection runs over the dead latents only, skipped when there are none (the CPU's cheaper form: a
            read costs nothing there). Both give the same loss and gradients.

    Returns ‖e − ê‖² / ‖e‖² over the batch (scale-free; under data parallelism this rank's ‖e − ê‖² over the
    global ‖e‖², so the replicas' values sum to the global batch's), with ê = top-k_aux(pre over dead latents) · W_dec,
    and 0 when no latent is dead. On latent shards the selection runs over every shard's dead latents and ê sums the
    shards' parts. It runs on the sparse path (only the selected entries enter any product), whichever path trained
    the batch.
    """
    mesh = model.mesh
    if fixed_width:
        rows, cols, _ = row_top_entries(pre.detach().masked_fill(~dead, float("-inf")), k_aux, mesh.tp)
        weight: Tensor | None = dead[cols]
    else:
        n_dead = int(all_reduce_(dead.sum(), group=mesh.tp))  # over every latent shard of the replica
        if n_dead == 0:
            return pre.new_zeros(())
        dead_idx = dead.nonzero().squeeze(-1)
        rows, positions, _ = row_top_entries(pre.detach()[:, dead_idx], min(k_aux, n_dead), mesh.tp)
        cols, weight = dead_idx[positions], None
    active = ActiveLatents.from_entries(pre, rows, cols)
    values = torch.relu(model.active_pre_activations(x_in, active))
    values = values if weight is None else values * weight
    estimate = sum_partials(sparse_decode(active, values, model.W_dec), mesh.tp)
    target = residual.detach()
    energy = all_reduce_(target.pow(2).sum(), group=mesh.dp)  # the global batch's: one normaliser for every rank
    loss = (target - estimate).pow(2).sum() / energy.clamp_min(1e-12)
    if not fixed_width:
        return loss
    any_dead = all_reduce_(dead.sum(), group=mesh.tp) > 0
    return torch.where(any_dead, loss, 0.0)


@torch.no_grad()
def resample_dead_latents(
    model: SparseDictionary,
    optimizer: torch.optim.Optimizer,
    dead: Tensor,
    x_in: Tensor,
    x_out: Tensor,
    encoder_scale: float,
    generator: torch.Generator,
) -> int:
    """Re-initialise dead latents towards badly reconstructed inputs (Bricken et al., 2023).

    Inputs are drawn with probability ∝ their squared reconstruction loss. A resampled latent gets the chosen
    sample's normalised residual as decoder row, its normalised centred input times ``encoder_scale`` × (mean
    alive encoder-column norm) as encoder column, b_enc = 0, and restarted Adam moments (see
    :func:`_reset_adam_moments`).

    Args:
        dead: [d_sae] bool mask.
        x_in: a pool of training inputs [n, d_in].
        x_out: their targets [n, d_out].

    Returns the number of latents resampled (over every latent shard).
    """
    tp = model.mesh.tp
    dead_idx = dead.nonzero().squeeze(-1)
    counts = _counts_per_shard(dead_idx.numel(), tp)
    n_dead = sum(counts)
    if n_dead == 0:
        return 0
    was_training = model.training
    model.eval()
    residual = x_out - model(x_in)
    model.train(was_training)
    weights = residual.pow(2).sum(dim=-1).pow(2)
    if not torch.isfinite(weights).all() or weights.sum() <= 0:
        return 0
    chosen = torch.multinomial(weights.cpu(), n_dead, replacement=True, generator=generator)
    first = sum(counts[: tp.rank])  # dead latents in global order: this shard's take their block of the draws
    chosen = chosen[first : first + dead_idx.numel()].to(x_in.device)
    dec_dirs = residual[chosen]
    dec_dirs /= dec_dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    enc_dirs = x_in[chosen] - x_in.mean(dim=0)
    enc_dirs /= enc_dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    alive = ~dead
    enc_norm = _shard_mean(model.W_enc[:, alive].norm(dim=0), tp, default=1.0)
    model.W_dec[dead_idx] = dec_dirs
    model.W_enc[:, dead_idx] = (enc_dirs * encoder_scale * enc_norm).T
    if isinstance(model.b_enc, torch.nn.Parameter):
        model.b_enc[dead_idx] = 0.0
    _reset_adam_moments(optimizer, model, dead_idx)
    return n_dead


def _counts_per_shard(count: int, tp: Group) -> list[int]:
    """``count`` of every latent shard of the replica, in shard order."""
    counts = torch.zeros(tp.size, dtype=torch.long)
    counts[tp.rank] = count
    return all_reduce_(counts, group=tp).tolist()


def _shard_mean(values: Tensor, tp: Group, default: float) -> Tensor:
    """Mean of ``values`` over every latent shard of the replica (``default`` when there are none)."""
    if tp.size == 1:
        return values.mean() if values.numel() else values.new_tensor(default)
    totals = all_reduce_(torch.stack([values.sum(), values.new_tensor(values.numel())]), group=tp)
    return totals[0] / totals[1] if totals[1] > 0 else values.new_tensor(default)


def _reset_adam_moments(optimizer: torch.optim.Optimizer, model: SparseDictionary, latents: Tensor) -> None:
    """Restart Adam for ``latents``: first moment zeroed, second moment set to the mean over the other latents.

    Zeroing the second moment as well would not restart Adam: PyTorch keeps one step count per parameter tensor, so
    the bias correction of a long-running tensor is ≈ 1 and a zeroed slice takes steps of ≈ 3–6 × lr for hundreds
    of steps (m/√v with m ≈ (1−β1)g, v ≈ (1−β2)g²); on real activations that blows training up. With v at its
    typical value a resampled latent moves at the usual Adam rate from its first step.
    """
    latent_dims = {id(model.W_enc): 1, id(model.W_dec): 0, id(model.b_enc): 0}
    for group in optimizer.param_groups:
        for param in group["params"]:
            dim = latent_dims.get(id(param))
            state = optimizer.state.get(param)
            if dim is None or not state:
                continue
            others = torch.ones(param.shape[dim], dtype=torch.bool, device=param.device)
            others[latents] = False
            if "exp_avg" in state:
                state["exp_avg"].index_fill_(dim, latents, 0.0)
            if "exp_avg_sq" in state:
                second = state["exp_avg_sq"]
                typical = _shard_mean(second[:, others] if dim == 1 else second[others], model.mesh.tp, default=0.0)
                second.index_fill_(dim, latents, typical.item())
