"""Wall time and peak memory of ``dictlab features`` over a whole store (the pass, every statistic, the records, the
JSON and the browser), in a fresh process.

    python benchmarks/features_pass.py --store STORE --run RUN           # a real store and dictionary
    python benchmarks/features_pass.py --rows 1000000 --d-sae 16384      # synthetic: Gaussian rows of width 576,
                                                                         # random tokens, a random TopK SAE (k = 32)

Prints one JSON line: seconds per stage (from features.json), total wall time and the child's peak RSS.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dictlab.data.store import StoreWriter
from dictlab.data.store.tokens import SEPARATOR, ShardTokens
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.models.io import save_dictionary

WIDTH = 576
TEXT_TOKENS = 64


def write_token_store(root: Path, rows: int, shard_rows: int = 65_536, seed: int = 0) -> None:
    """Gaussian rows; texts of TEXT_TOKENS random tokens, every position a row."""
    rng = np.random.default_rng(seed)
    n_texts = -(-rows // TEXT_TOKENS)
    writer = StoreWriter.open(
        root, "synthetic", {"resid": WIDTH}, "float32", {"rows": rows}, np.zeros(n_texts, np.int64), ["x"], tokens=True
    )
    done = 0
    while done < rows:
        n = min(shard_rows, rows - done)
        block = rng.standard_normal((n, WIDTH), dtype=np.float32)
        first_text, last_text = done // TEXT_TOKENS, (done + n - 1) // TEXT_TOKENS
        flat, index = [], np.empty(n, np.int64)
        for text in range(first_text, last_text + 1):
            lo, hi = max(text * TEXT_TOKENS, done), min((text + 1) * TEXT_TOKENS, done + n)
            base = sum(len(part) for part in flat)
            index[lo - done : hi - done] = base + np.arange(hi - lo)
            flat.append(np.concatenate([rng.integers(0, 49_152, hi - lo), [SEPARATOR]]))
        tokens = ShardTokens(np.concatenate(flat).astype(np.int32), index)
        done += n
        writer.commit({"resid": block}, np.arange(done - n, done) // TEXT_TOKENS, done, done, done, tokens)
    writer.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic store rows")
    parser.add_argument("--d-sae", type=int, default=16_384, help="synthetic SAE width")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("extra", nargs="*", help="further dictlab features options (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, run = args.store, args.run
        if store is None or run is None:
            store, run = Path(tmp) / "store", Path(tmp) / "run"
            write_token_store(store, args.rows)
            cfg = DictionaryConfig(kind="sae", d_in=WIDTH, d_out=WIDTH, d_sae=args.d_sae, activation="topk", k=args.k)
            save_dictionary(SparseDictionary(cfg, torch.Generator().manual_seed(0)), run)
        out = Path(tmp) / "features"
        command = [sys.executable, "-m", "dictlab", "features", str(run), "--store", str(store), "--out", str(out)]
        start = time.perf_counter()
        subprocess.run([*command, "--no-progress", *args.extra], check=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        head = json.loads((out / "features.json").read_text())
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        record = {
            "rows": head["source"]["rows"],
            "d_sae": head["source"]["d_sae"],
            "seconds": {k: round(v, 1) for k, v in head["seconds"].items()},
            "wall_s": round(wall, 1),
            "peak_rss_mib": round(peak),
            "output_mib": round(size, 1),
        }
        print(json.dumps(record))


if __name__ == "__main__":
    main()
