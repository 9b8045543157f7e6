"""The run's process layout: data-parallel replicas × latent (tensor-parallel) shards, and process groups.

A run over W processes is a dp × tp grid (W = dp·tp): the tp processes of one replica hold disjoint contiguous
blocks of the latents and see the same rows; the dp replicas split each global batch's rows. Rank r sits at
(r // tp, r % tp). The grid is torch's :class:`~torch.distributed.device_mesh.DeviceMesh` with dimensions
``("dp", "tp")``; in one process no group exists and every collective is the identity.
"""

from dataclasses import dataclass

import torch.distributed as dist
from torch.distributed import ProcessGroup
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from dictlab.distributed.world import world


@dataclass(frozen=True)
class Group:
    """Processes that reduce together; ``handle`` is None for a process alone (size 1: collectives are no-ops)."""

    handle: ProcessGroup | None
    rank: int
    size: int

    @classmethod
    def alone(cls) -> "Group":
        return cls(None, 0, 1)

    @classmethod
    def everyone(cls) -> "Group":
        """Every process of the run (the default group), or this process alone outside a distributed run."""
        here = world()
        return cls(dist.group.WORLD, here.rank, here.size) if here.distributed else cls.alone()


@dataclass(frozen=True)
class LatentRange:
    """The block ``[start, stop)`` of a dictionary's ``total`` latents that this process holds."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def whole(self) -> bool:
        return self.size == self.total


@dataclass(frozen=True)
class Mesh:
    """This process's place in the dp × tp grid and the groups it reduces over.

    ``dp``: the replicas holding the same latents (gradients and row statistics are summed over it); ``tp``: the
    shards of one replica (partial decoder sums and per-latent selections are combined over it); ``all``: both
    (batch-wide selections, global stop decisions).
    """

    dp: Group
    tp: Group
    all: Group
    grid: DeviceMesh | None = None
    """The torch device mesh (dimensions ``dp``, ``tp``) when latents are sharded; sharded checkpoints use it."""

    @classmethod
    def alone(cls) -> "Mesh":
        """A process training on its own (one process, or one rank's own dictionaries)."""
        return cls(Group.alone(), Group.alone(), Group.alone())

    @classmethod
    def data_parallel(cls) -> "Mesh":
        """Every process a replica (tp = 1): the layout of a plain torchrun run."""
        everyone = Group.everyone()
        return cls(everyone, Group.alone(), everyone)

    @classmethod
    def build(cls, tp: int = 1, device_type: str = "cpu") -> "Mesh":
        """The dp × tp grid over every process (collective: every rank calls it with the same ``tp``)."""
        here = world()
        if tp < 1 or here.size % tp:
            raise ValueError(f"--tp {tp} does not divide the {here.size} processes of this run")
        if tp == 1:
            return cls.data_parallel()
        grid = init_device_mesh(device_type, (here.size // tp, tp), mesh_dim_names=("dp", "tp"))

        def group(name: str) -> Group:
            size = grid.size(grid.mesh_dim_names.index(name)) if grid.mesh_dim_names else 1
            return Group(grid.get_group(name), grid.get_local_rank(name), size)

        return cls(group("dp"), group("tp"), Group.everyone(), grid)

    def latent_range(self, d_sae: int) -> LatentRange:
        """This process's contiguous block of ``d_sae`` latents (``tp`` must divide ``d_sae``)."""
        tp = self.tp.size
        if d_sae % tp:
            raise ValueError(f"d_sae = {d_sae} cannot be split evenly over --tp {tp} latent shards")
        block = d_sae // tp
        return LatentRange(self.tp.rank * block, (self.tp.rank + 1) * block, d_sae)
