"""Time the all-pairs 1-D hull test at SAE scale: 16,384 atoms × 100,000 samples (d = 768, L0 = 32) by default.

Usage: python benchmarks/pairwise_hull.py [--atoms 16384] [--samples 100000] [--dim 768] [--l0 32] [--repeats 1]
                                          [--full]

Codes are synthetic but SAE-like: each sample activates ``l0`` distinct atoms drawn with Zipf-like frequencies
(a few frequent atoms, a long tail), magnitudes Exp(1); 64 child atoms are planted to fire only with a parent and
one dense antipodal pair is added, so the pass has real nested pairs and a dense atom to find. The timed call is
``pairwise_hull_test``: every unordered pair of live atoms (≈ 1.3·10⁸) is decided, exceptions exactly by the walk,
the rest through the blocked W·Wᵀ pass. Prints the time, the pairs tested, what was found and the peak RSS.
With ``--full`` it also times the whole report (`diagnose_codes`: conditions, LP, hierarchy, residuals, wide
limit) on data X = A·W + noise, section by section.
"""

import argparse
import resource
import statistics
import time

import torch

from dictlab.diagnostics import L1Dictionary, SparseCodes, diagnose_codes, pairwise_hull_test

CHUNK = 2048


def synthetic_codes(n: int, k: int, l0: int, generator: torch.Generator) -> SparseCodes:
    """Sparse codes [n, k] with l0 active atoms per row (Gumbel top-k over Zipf log-frequencies)."""
    log_freq = -0.7 * torch.log(torch.arange(1, k + 1, dtype=torch.float32))
    log_freq = log_freq[torch.randperm(k, generator=generator)]
    rows, cols, values = [], [], []
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        gumbel = -torch.log(-torch.log(torch.rand(m, k, generator=generator).clamp_min(1e-12)))
        idx = (log_freq + gumbel).topk(l0, dim=1).indices
        rows.append(torch.arange(lo, lo + m).repeat_interleave(l0))
        cols.append(idx.flatten())
        values.append(torch.empty(m * l0).exponential_(generator=generator))
    rows_t, cols_t, values_t = torch.cat(rows), torch.cat(cols), torch.cat(values)
    # Plant 64 children (atoms 0..63) that fire only where their parent (atoms 64..127) fires.
    keep = cols_t >= 64
    parent_rows = [rows_t[cols_t == 64 + c] for c in range(64)]
    child_rows = [r[torch.rand(len(r), generator=generator) < 0.5] for r in parent_rows]
    rows_t = torch.cat([rows_t[keep], *child_rows])
    cols_t = torch.cat([cols_t[keep], *[torch.full((len(r),), c) for c, r in enumerate(child_rows)]])
    values_t = torch.cat([values_t[keep], *[torch.rand(len(r), generator=generator) + 0.5 for r in child_rows]])
    # A dense signed direction carried by atoms 128 (+) and 129 (−): every sample uses exactly one of them.
    signed = torch.randn(n, generator=generator)
    extra_rows = torch.arange(n)
    extra_cols = torch.where(signed > 0, 128, 129)
    drop = (cols_t == 128) | (cols_t == 129)
    rows_t = torch.cat([rows_t[~drop], extra_rows])
    cols_t = torch.cat([cols_t[~drop], extra_cols])
    values_t = torch.cat([values_t[~drop], signed.abs() + 1e-3])
    order = torch.argsort(rows_t * k + cols_t)
    return SparseCodes(rows_t[order], cols_t[order], values_t[order].double(), n, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--atoms", type=int, default=16384)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--l0", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also time the whole diagnostics report")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    codes = synthetic_codes(args.samples, args.atoms, args.l0, g)
    atoms = torch.randn(args.atoms, args.dim, generator=g)
    atoms[129] = -atoms[128]
    atoms /= atoms.norm(dim=1, keepdim=True)
    built = time.perf_counter() - started
    print(f"built {codes.nnz:,} nonzero codes ({args.samples:,} × {args.atoms:,}) in {built:.1f} s")
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = pairwise_hull_test(codes, atoms, bias=True)
        times.append(time.perf_counter() - started)
    s = result.summary
    print(f"threads: {torch.get_num_threads()}")
    print(f"pairs tested: {s.n_pairs:,} (live atoms {s.n_live_atoms:,}); exceptions walked: {s.n_exception_pairs:,}")
    print(f"failing: {s.n_failing_pairs:,}; nested: {s.n_nested_pairs:,}; antipodal: {len(result.antipodal_pairs)}")
    print(f"pairwise pass: median {statistics.median(times):.1f} s over {args.repeats} run(s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if args.full:
        X = codes.matmul(atoms.double()) + 0.05 * torch.randn(args.samples, args.dim, generator=g, dtype=torch.float64)
        started = time.perf_counter()
        report = diagnose_codes(X, L1Dictionary(atoms.double(), None), codes, lam=0.1).report
        sections = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.seconds.items())
        print(f"full report: {time.perf_counter() - started:.1f} s ({sections})")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
