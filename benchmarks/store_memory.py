"""Peak memory of ``dictlab train --store`` against the size of the store: streaming keeps it flat.

Writes synthetic activation stores of several sizes (Gaussian rows, width 576 like SmolLM2's residual stream),
then trains the same TopK SAE for the same number of steps on each in a fresh process and reports the process's
peak RSS. A trainer that loaded the store would grow with it; a streaming one stays at model + buffer.

    python benchmarks/store_memory.py                 # stores of 100k and 400k rows (230 MB and 920 MB)
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dictlab.data.store import StoreWriter

WIDTH = 576


def write_store(root: Path, rows: int, shard_rows: int = 65_536, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    writer = StoreWriter.open(root, "synthetic", {"resid": WIDTH}, "float32", {"rows": rows}, np.zeros(1), ["x"])
    done = 0
    while done < rows:
        n = min(shard_rows, rows - done)
        block = rng.standard_normal((n, WIDTH), dtype=np.float32)
        done += n
        writer.commit({"resid": block}, np.zeros(n, np.int64), done, done, done)
    writer.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--buffer-rows", type=int, default=32_768)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            store = Path(tmp) / f"store-{rows}"
            write_store(store, rows)
            out = Path(tmp) / f"run-{rows}"
            command = [
                sys.executable,
                "-m",
                "dictlab.cli.main",
                "train",
                "--store",
                str(store),
                "--out",
                str(out),
                "--steps",
                str(args.steps),
                "--buffer-rows",
                str(args.buffer_rows),
                "--k",
                "32",
                "--expansion",
                "8",
                "--batch-size",
                "4096",
                "--no-progress",
            ]
            subprocess.run(command, check=True, capture_output=True, text=True)
            metrics = json.loads((out / "metrics.json").read_text())
            results.append((rows, metrics["store_mib"], metrics["buffer_mib"], metrics["peak_rss_mib"]))
    print("| store rows | store size | buffer | peak RSS |")
    print("|---|---|---|---|")
    for rows, store_mib, buffer_mib, rss in results:
        print(f"| {rows:,} | {store_mib:.0f} MiB | {buffer_mib:.0f} MiB | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
