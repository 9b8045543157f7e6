"""Projected scaling efficiency of data- and latent-parallel TopK training on H100 GPUs (a projection, not a
measurement).

Usage: python benchmarks/scaling_projection.py [--batch-per-gpu 4096] [--k 32] [--mfu 0.5]

Per step and GPU, compute time = FLOPs / (MFU × H100 dense BF16 peak) and communication time = bytes ·
2(n−1)/n / busbw for a ring all-reduce over n GPUs (gathers: bytes · (n−1) / busbw), with no overlap of the two
(dictlab reduces after the backward pass), so efficiency = compute / (compute + communication). The byte counts
are the ones :mod:`benchmarks.parallel_training` measures on CPU (gradients in float32: 4·(2·d·F + F + d) bytes
per data-parallel replica; with latent shards the decoder's partial sums 4·B·d, b_dec's gradient and the top-k
candidates 4·B·k per shard). The TopK sparse path's FLOPs are dominated by the encoder product, 2·d·F per row
(the other products touch k latents per row and are ignored here).

Cited figures (as constants below):
* H100 SXM5 dense BF16 tensor throughput 989 TFLOP/s (NVIDIA H100 Tensor Core GPU datasheet: 1,979 TFLOP/s with
  2:4 sparsity, half of it dense).
* All-reduce bus bandwidth (nccl-tests busbw at large sizes): 8×H100 SXM5 over NVLink 460–480 GB/s
  (docs.alayanew.com, "NCCL-tests in practice", 2026-05-06) — 460 used within a node; H100 SXM over NVLink +
  InfiniBand NDR 400–450 GB/s (saturncloud.io, "Validating Multi-Node GPU Clusters with NCCL Tests") — 400 used
  across nodes.
"""

import argparse
from dataclasses import dataclass

PEAK_FLOPS = 989e12
BUSBW_NODE = 460e9
BUSBW_CLUSTER = 400e9
GPUS_PER_NODE = 8


@dataclass(frozen=True)
class Layout:
    gpus: int
    tp: int

    @property
    def dp(self) -> int:
        return self.gpus // self.tp


def _all_reduce_seconds(nbytes: float, n: int, busbw: float) -> float:
    return 0.0 if n == 1 else nbytes * 2 * (n - 1) / n / busbw


def _gather_seconds(nbytes: float, n: int, busbw: float) -> float:
    return 0.0 if n == 1 else nbytes * (n - 1) / busbw


def project(d: int, d_sae: int, layout: Layout, batch_per_replica: int, k: int, mfu: float) -> dict[str, float]:
    """Compute and communication seconds per step and GPU, and the efficiency, for one layout."""
    shard = d_sae // layout.tp
    compute = 2 * d * shard * batch_per_replica / (mfu * PEAK_FLOPS)
    tp_bw = BUSBW_NODE if layout.tp <= GPUS_PER_NODE else BUSBW_CLUSTER
    dp_bw = BUSBW_NODE if layout.gpus <= GPUS_PER_NODE else BUSBW_CLUSTER
    gradients = 4 * (2 * d * shard + shard + d)
    partials = 4 * batch_per_replica * d + 4 * d  # x̂ partial sums and b_dec's gradient
    candidates = 4 * batch_per_replica * k
    communication = (
        _all_reduce_seconds(gradients, layout.dp, dp_bw)
        + _all_reduce_seconds(partials, layout.tp, tp_bw)
        + _gather_seconds(candidates, layout.tp, tp_bw)
    )
    return {
        "compute_ms": compute * 1e3,
        "communication_ms": communication * 1e3,
        "efficiency": compute / (compute + communication),
        "gradient_mib": gradients / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-per-gpu", type=int, default=4096, help="rows per data-parallel replica and step")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--mfu", type=float, default=0.5, help="assumed fraction of the BF16 peak the encoder reaches")
    args = parser.parse_args()
    print("| dictionary | GPUs | dp × tp | compute ms/step | communication ms/step | efficiency |")
    print("|---|---|---|---|---|---|")
    for d_sae in (16_384, 262_144):
        for gpus in (8, 64, 512):
            layouts = [Layout(gpus, 1)] + ([Layout(gpus, GPUS_PER_NODE)] if d_sae >= 65_536 else [])
            for layout in layouts:
                row = project(768, d_sae, layout, args.batch_per_gpu, args.k, args.mfu)
                print(
                    f"| 768 → {d_sae:,} | {gpus} | {layout.dp} × {layout.tp} | {row['compute_ms']:.3f} | "
                    f"{row['communication_ms']:.3f} | {row['efficiency']:.0%} |"
                )


if __name__ == "__main__":
    main()
