"""Fuzz table: bad input to every command gives one ``Error:`` line naming the problem, a non-zero exit, no
traceback, and leaves the output folder as it was (or absent)."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from reliability_helpers import SMALL_TRAIN, edit_json, error_line, invoke, snapshot

from .conftest import Folders

Build = Callable[[Folders, Path], tuple[list[str | Path], Path]]
"""(folders, tmp) -> (command-line arguments, the output path that must stay unchanged)."""


@dataclass(frozen=True)
class Case:
    id: str
    build: Build
    expect: str


def train(store: Path, out: Path, *extra: str | Path) -> list[str | Path]:
    return ["train", "--store", store, "--out", out, "--steps", "30", *SMALL_TRAIN, *extra]


def _train_case(id: str, expect: str, *extra: str) -> Case:
    return Case(id, lambda f, tmp: (train(f.store, tmp / "out", *extra), tmp / "out"), expect)


def _store_with(change: Callable[[dict], None]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        store = f.copy("store", tmp)
        edit_json(store / "manifest.json", change)
        return train(store, tmp / "out"), tmp / "out"

    return build


def _store_file(write: Callable[[Path], None]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        store = f.copy("store", tmp)
        write(store)
        return train(store, tmp / "out"), tmp / "out"

    return build


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _run_with(change: Callable[[dict], None]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        run = f.copy("run", tmp)
        edit_json(run / "cfg.json", change)
        return ["diagnose", run, "--out", tmp / "diag"], tmp / "diag"

    return build


def _bench_run_with(change: Callable[[dict], None]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        bench = f.copy("bench", tmp)
        edit_json(bench / "runs" / "topk" / "cfg.json", change)
        return ["diagnose", bench / "runs" / "topk", "--lam", "0.1", "--out", tmp / "diag"], tmp / "diag"

    return build


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(obj: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        obj[last] = value

    return change


def _run_weights(transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        run = f.copy("run", tmp)
        path = run / "weights.safetensors"
        save_file(transform(load_file(path)), path)
        return ["diagnose", run, "--out", tmp / "diag"], tmp / "diag"

    return build


def _with_data(rows: np.ndarray | None = None, pickled: bool = False) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        path = tmp / ("data.pt" if pickled else "data.npy")
        if pickled:
            torch.save({"x": torch.zeros(4, 32), "why": Path("a")}, path)
        else:
            np.save(path, rows)
        return ["diagnose", f.run, "--data", path, "--out", tmp / "diag"], tmp / "diag"

    return build


def _checkpoint(payload: object) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        run = f.copy("run", tmp)
        torch.save(payload, run / "train" / "checkpoint.pt")
        return train(f.store, run, "--k", "4"), run

    return build


def _existing_file(command: Callable[[Folders, Path], list[str | Path]]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        (tmp / "out").write_text("not a folder")
        return command(f, tmp / "out"), tmp / "out"

    return build


def _foreign_folder(command: Callable[[Folders, Path], list[str | Path]]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        (tmp / "out").mkdir()
        (tmp / "out" / "notes.txt").write_text("mine")
        return command(f, tmp / "out"), tmp / "out"

    return build


def _onto(name: str, command: Callable[[Folders, Path], list[str | Path]]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        target = f.copy(name, tmp)
        return command(f, target), target

    return build


def _pickled_model(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
    model = tmp / "pickled-model"
    model.mkdir()
    for p in f.lm.iterdir():
        if p.suffix != ".safetensors":
            (model / p.name).write_bytes(p.read_bytes())
    torch.save({"weight": torch.zeros(2)}, model / "pytorch_model.bin")
    return ["capture", "--model", model, "--module", "layer:1", "--corpus", f.corpus, "--out", tmp / "out"], tmp / "out"


def _capture(*extra: str) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        args = ["capture", "--model", f.lm, "--module", "layer:1", "--corpus", f.corpus, "--out", tmp / "out"]
        return [*args, *extra, "--no-progress"], tmp / "out"

    return build


def _capture_onto(name: str) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        target = f.copy(name, tmp)
        args = ["capture", "--model", f.lm, "--module", "layer:1", "--corpus", f.corpus, "--out", target]
        return [*args, "--no-progress"], target

    return build


def _bench(f: Folders, out: Path) -> list[str | Path]:
    return ["bench", "--preset", "smoke", "--methods", "topk", "--no-sweep", "--steps", "20", "--out", out]


def _saelens_with(change: Callable[[dict], None]) -> Build:
    def build(f: Folders, tmp: Path) -> tuple[list[str | Path], Path]:
        folder = f.copy("saelens", tmp)
        edit_json(folder / "cfg.json", change)
        return ["import-saelens", folder, tmp / "out"], tmp / "out"

    return build


CASES = [
    # train: options
    _train_case("lr-inf", "--lr: Input should be a finite number", "--lr", "inf"),
    _train_case("lr-negative", "--lr: Input should be greater than 0", "--lr", "-1"),
    _train_case("k-with-relu", "--k applies to activations that use k", "--activation", "relu", "--k", "4"),
    _train_case("coefficient-with-topk", "--sparsity-coefficient applies", "--sparsity-coefficient", "0.1"),
    _train_case(
        "aux-with-relu",
        "--aux-coefficient applies",
        *("--activation", "relu", "--sparsity-coefficient", "1", "--aux-coefficient", "0.1"),
    ),
    _train_case(
        "path-with-relu", "--path applies", "--activation", "relu", "--sparsity-coefficient", "1", "--path", "dense"
    ),
    _train_case("relu-without-coefficient", "needs --sparsity-coefficient > 0", "--activation", "relu"),
    _train_case("unknown-activation", "'swish' is not one of", "--activation", "swish"),
    _train_case("tf32-on-cpu", "--precision tf32 changes CUDA matmuls only", "--precision", "tf32"),
    _train_case("cuda-without-cuda", "--device cuda", "--device", "cuda"),
    _train_case("bad-device", "is not a device name", "--device", "banana"),
    _train_case("huge-d-sae", "GiB of memory, more than", "--d-sae", "1000000000000"),
    _train_case("norm-ratio-drops-all", "drops every row", "--max-norm-ratio", "0.0001"),
    _train_case("chunk-too-large", "fewer rows than one chunk", "--chunk-rows", "10000000"),
    _train_case("batch-too-large", "exceeds the", "--batch-size", "100000"),
    _train_case("single-chunk-holdout", "nothing can be held out", "--chunk-rows", "12000", "--batch-size", "64"),
    _train_case("diverges", "training diverged", "--lr", "1e6"),
    _train_case("zero-lanes", "--lanes: Input should be greater than 0", "--lanes", "0"),
    _train_case("batch-not-multiple-of-lanes", "is not a multiple of --lanes 3", "--lanes", "3"),
    _train_case("tp-larger-than-the-run", "--tp 2 does not divide the 1 processes of this run", "--tp", "2"),
    Case(
        "missing-store", lambda f, tmp: (train(tmp / "nowhere", tmp / "out"), tmp / "out"), "manifest.json is missing"
    ),
    # train: output folders
    Case("out-is-file", _existing_file(lambda f, out: train(f.store, out)), "is an existing file"),
    Case("out-is-foreign", _foreign_folder(lambda f, out: train(f.store, out)), "did not write"),
    Case("out-is-store", _onto("store", lambda f, out: train(f.store, out)), "written by `dictlab capture`"),
    Case("out-is-bench", _onto("bench", lambda f, out: train(f.store, out)), "written by `dictlab bench`"),
    Case("changed-k", _onto("run", lambda f, out: train(f.store, out, "--k", "8")), "setting k is 4 there, 8 now"),
    Case("changed-seed", _onto("run", lambda f, out: train(f.store, out, "--k", "4", "--seed", "1")), "setting seed"),
    Case("changed-lr", _onto("run", lambda f, out: train(f.store, out, "--k", "4", "--lr", "0.01")), "setting lr"),
    Case(
        "changed-normalize",
        _onto("run", lambda f, out: train(f.store, out, "--k", "4", "--no-normalize")),
        "setting normalize",
    ),
    Case(
        "changed-activation",
        _onto("run", lambda f, out: train(f.store, out, "--activation", "batchtopk", "--k", "4")),
        "setting activation",
    ),
    Case(
        "changed-store",
        lambda f, tmp: (train(_shrunk_store(f, tmp), out := f.copy("run", tmp), "--k", "4"), out),
        "input store is",
    ),
    Case("checkpoint-wrong-structure", _checkpoint({"x": 1}), "not a dictlab training checkpoint"),
    Case("checkpoint-pickled-object", _checkpoint({"x": Path("a")}), "pickled Python objects other than tensors"),
    # train: crafted stores
    Case(
        "manifest-folder-traversal", _store_with(lambda m: m["modules"][0].update(folder="../../x")), "not a plain name"
    ),
    Case("manifest-folder-absolute", _store_with(lambda m: m["modules"][0].update(folder="/etc")), "not a plain name"),
    Case("manifest-shard-traversal", _store_with(lambda m: m["shards"][0].update(file="../x.npy")), "not a plain name"),
    Case(
        "manifest-negative-sum",
        _store_with(lambda m: m["modules"][0]["stats"].update(norm_sq_sum=-1.0)),
        "greater than or equal to 0",
    ),
    Case("manifest-negative-rows", _store_with(lambda m: m["shards"][0].update(rows=-5)), "greater than or equal to 0"),
    Case("manifest-huge-width", _store_with(lambda m: m["modules"][0].update(width=10**12)), "less than or equal to"),
    Case("manifest-not-json", _store_file(lambda s: (s / "manifest.json").write_text("{nope")), "not valid JSON"),
    Case("manifest-deep", _store_file(lambda s: (s / "manifest.json").write_text(_nested(100_000))), "deeper than 64"),
    Case("manifest-array", _store_file(lambda s: (s / "manifest.json").write_text("[1]")), "must hold a JSON object"),
    Case(
        "shard-truncated",
        _store_file(lambda s: _truncate(next((s / "model.layers.1").glob("*.npy")))),
        "truncated or corrupt",
    ),
    # capture
    Case("capture-skip-all", _capture("--skip-first", "1000"), "drops every position"),
    Case("capture-pickled-model", _pickled_model, "has no .safetensors weights"),
    Case("capture-cuda", _capture("--device", "cuda"), "--device cuda"),
    Case(
        "capture-missing-corpus",
        lambda f, tmp: (
            ["capture", "--model", f.lm, "--module", "layer:1", "--corpus", tmp / "none.txt", "--out", tmp / "out"],
            tmp / "out",
        ),
        "none.txt",
    ),
    Case("capture-bad-module", _capture("--module", "layer:99"), "layer"),
    Case("capture-onto-run", _capture_onto("run"), "written by `dictlab train`"),
    Case("capture-changed-settings", _capture_onto("store"), "there"),
    # bench
    Case("bench-out-is-file", _existing_file(_bench), "is an existing file"),
    Case("bench-onto-store", _onto("store", _bench), "written by `dictlab capture`"),
    Case("bench-onto-run", _onto("run", _bench), "written by `dictlab train`"),
    Case("bench-changed-steps", _onto("bench", lambda f, out: [*_bench(f, out)[:-3], "30", "--out", out]), "there"),
    Case(
        "bench-unknown-method",
        lambda f, tmp: (["bench", "--methods", "nope", "--out", tmp / "out"], tmp / "out"),
        "unknown method",
    ),
    Case(
        "bench-zero-steps",
        lambda f, tmp: ([*_bench(f, tmp / "out")[:-3], "0", "--out", tmp / "out"], tmp / "out"),
        "--steps",
    ),
    Case("bench-cuda", lambda f, tmp: ([*_bench(f, tmp / "out"), "--device", "cuda"], tmp / "out"), "--device cuda"),
    Case(
        "bench-unknown-preset",
        lambda f, tmp: (["bench", "--preset", "huge", "--out", tmp / "out"], tmp / "out"),
        "Invalid value",
    ),
    # diagnose
    Case("diagnose-metadata-null", _run_with(_set("metadata", None)), "'metadata' must be a JSON object"),
    Case("diagnose-recipe-string", _run_with(_set("metadata.recipe", "fast")), "recipe"),
    Case("diagnose-scale-negative", _run_with(_set("metadata.input_scale_folded", -1)), "input_scale_folded"),
    Case("diagnose-no-data-config", _run_with(_set("metadata.data", {"generator": "dictlab.lrb"})), "pass --data"),
    Case("diagnose-bandwidth-infinite", _run_with(_set("dictionary.jumprelu_bandwidth", float("inf"))), "finite"),
    Case("diagnose-huge-d-sae", _run_with(_set("dictionary.d_sae", 10**12)), "GiB of memory"),
    Case("diagnose-deep-config", _run_with(_set("metadata.x", json.loads(_nested(100)))), "deeper than 64"),
    Case("diagnose-huge-n-test", _bench_run_with(_set("metadata.data.config.n_test", 10**12)), "GiB of memory"),
    Case("diagnose-bad-data-config", _bench_run_with(_set("metadata.data.config.sparsity", 7)), "data.config"),
    Case("diagnose-int-weights", _run_weights(lambda t: {k: v.to(torch.int32) for k, v in t.items()}), "torch.int32"),
    Case(
        "diagnose-missing-tensor",
        _run_weights(lambda t: {k: v for k, v in t.items() if k != "b_dec"}),
        "does not match",
    ),
    Case("diagnose-one-row", _with_data(np.ones((1, 32), np.float32)), "at least 2 data rows"),
    Case("diagnose-wrong-width", _with_data(np.ones((10, 7), np.float32)), "32"),
    Case("diagnose-nan-data", _with_data(np.full((10, 32), np.nan, np.float32)), "NaN"),
    Case("diagnose-pickled-data", _with_data(pickled=True), "pickled Python objects other than tensors"),
    Case(
        "diagnose-out-is-file", _existing_file(lambda f, out: ["diagnose", f.run, "--out", out]), "is an existing file"
    ),
    Case(
        "diagnose-onto-run",
        _onto("run", lambda f, out: ["diagnose", f.run, "--out", out]),
        "written by `dictlab train`",
    ),
    Case(
        "diagnose-lam-inf",
        lambda f, tmp: (["diagnose", f.run, "--lam", "inf", "--out", tmp / "d"], tmp / "d"),
        "finite",
    ),
    # SAELens interop
    Case(
        "import-onto-run", _onto("run", lambda f, out: ["import-saelens", f.saelens, out]), "written by `dictlab train`"
    ),
    Case("import-metadata-list", _saelens_with(_set("metadata", [1])), "'metadata' must be a JSON object"),
    Case("import-architecture", _saelens_with(_set("architecture", "gated")), "unsupported architecture"),
    Case("import-d-sae-string", _saelens_with(_set("d_sae", "many")), "'d_sae' must be a positive integer"),
    Case("export-onto-run", _onto("run", lambda f, out: ["export-saelens", f.run, out]), "written by `dictlab train`"),
    Case("export-onto-foreign", _foreign_folder(lambda f, out: ["export-saelens", f.run, out]), "did not write"),
    # eval-in-model, report, reproduce
    Case("in-model-out-is-folder", lambda f, tmp: (["eval-in-model", f.run, "--out", tmp], tmp), "is a folder"),
    Case("in-model-no-model", lambda f, tmp: (["eval-in-model", f.bench / "runs" / "topk"], f.bench), "pass --model"),
    Case("report-out-is-file", _existing_file(lambda f, out: ["report", f.bench, "--out", out]), "is a file"),
    Case(
        "report-not-a-run", lambda f, tmp: (["report", f.store, "--out", tmp / "r"], tmp / "r"), "has no results.json"
    ),
    Case(
        "reproduce-out-is-file",
        _existing_file(lambda f, out: ["reproduce", "theory", "--quick", "--out", out]),
        "is an existing file",
    ),
    Case(
        "reproduce-preset-not-bench",
        lambda f, tmp: (["reproduce", "theory", "--preset", "smoke", "--out", tmp / "o"], tmp / "o"),
        "--preset applies",
    ),
    Case(
        "reproduce-onto-run",
        _onto("run", lambda f, out: ["reproduce", "theory", "--quick", "--out", out]),
        "written by `dictlab train`",
    ),
]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _shrunk_store(f: Folders, tmp: Path) -> Path:
    """The same store with its last shard dropped from the manifest: other content, other fingerprint."""
    store = f.copy("store", tmp)

    def drop_last(manifest: dict) -> None:
        manifest["shards"].pop()
        for module in manifest["modules"]:
            module["stats"] = {}

    edit_json(store / "manifest.json", drop_last)
    return store


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_leaves_the_output_alone(case: Case, folders: Folders, tmp_path: Path) -> None:
    args, watched = case.build(folders, tmp_path)
    before = snapshot(watched)
    result = invoke(*args)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    line = error_line(result)
    assert case.expect in line, line
    assert snapshot(watched) == before, f"{watched} changed"


def test_debug_shows_the_traceback(folders: Folders, tmp_path: Path) -> None:
    result = invoke("--debug", *train(folders.store, tmp_path / "out", "--lr", "1e6"))
    assert result.exit_code != 0 and "training diverged" in str(result.exception)
    assert not isinstance(result.exception, SystemExit)
