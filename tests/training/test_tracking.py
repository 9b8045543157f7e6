"""Experiment tracking: TensorBoard scalars and offline W&B runs hold exactly the JSONL log's values, a killed and
resumed training continues the same tracked run with every step once, and a missing package says what to install."""

import json
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from pydantic import ValidationError

from dictlab.cli.main import cli
from dictlab.data.store import StoreWriter
from dictlab.jobs.train import StoreTrainRequest, train_on_store
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer, read_training_log
from dictlab.training.config import Tracking
from dictlab.training.tracking import INSTALL, TENSORBOARD_DIR, WANDB_ID_FILE

D, D_SAE, STEPS, KILLED_AT, CHECKPOINTED_AT = 12, 48, 24, 13, 10
LOG_STEPS = list(range(2, STEPS + 1, 2))
Scalars = dict[tuple[str, int], float]
"""(``<member>/<metric>``, step) → value."""


def _trainer(workdir: Path | None, tracking: Tracking = "none") -> Trainer:
    recipe = RecipeConfig(lr=3e-3, dead_window_samples=256)
    specs = {
        "topk": (DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3), recipe),
        "relu": (
            DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="relu"),
            recipe.model_copy(update={"sparsity_coefficient": 0.05}),
        ),
    }
    members = [Member(n, SparseDictionary(c, torch.Generator().manual_seed(1)), r) for n, (c, r) in specs.items()]
    data = torch.randn(512, D, generator=torch.Generator().manual_seed(0)).relu()
    config = TrainConfig(batch_size=64, steps=STEPS, log_every=2, checkpoint_every=5, progress=False, tracking=tracking)
    return Trainer(members, ShuffledBatches(data, 64, 7), config, workdir=workdir)


def _killed_and_resumed(workdir: Path, tracking: Tracking) -> None:
    _trainer(workdir, tracking).fit(until_step=KILLED_AT)  # logged up to step 12, checkpointed at step 10
    resumed = _trainer(workdir, tracking)
    assert resumed.step == CHECKPOINTED_AT
    resumed.fit()


def _logged(workdir: Path) -> Scalars:
    """The JSONL log's metrics."""
    return {
        (f"{line['member']}/{key}", line["step"]): value
        for line in read_training_log(workdir)
        for key, value in line.items()
        if key not in ("step", "member")
    }


def _float32(values: Scalars) -> Scalars:
    return {key: float(np.float32(value)) for key, value in values.items()}


def _tensorboard(workdir: Path) -> Scalars:
    """Every scalar TensorBoard shows for the run (after its purges), checking that no step appears twice."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(workdir / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    accumulator.Reload()
    found: Scalars = {}
    for tag in accumulator.Tags()["scalars"]:
        steps = [event.step for event in accumulator.Scalars(tag)]
        assert len(steps) == len(set(steps)), f"{tag}: steps {steps}"
        found.update({(tag, event.step): event.value for event in accumulator.Scalars(tag)})
    return found


def _wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline run's ``.wandb`` file (a LevelDB-style log: 32 KiB blocks of chunks,
    each with a 7-byte header of CRC, length and type; FULL = 1, FIRST = 2, MIDDLE = 3, LAST = 4)."""
    from wandb.proto import wandb_internal_pb2

    data, block, header = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    records, chunks, position = [], b"", header  # the file header fills the first 7 bytes
    while position + header <= len(data):
        room = block - position % block
        _, length, kind = struct.unpack("<IHB", data[position : position + header]) if room >= header else (0, 0, 0)
        if kind == 0 and length == 0:  # a block's zero-filled tail
            position += room
            continue
        chunks += data[position + header : position + header + length]
        position += header + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def _finished_wandb_records(path: Path, timeout_s: float = 60.0) -> list[Any]:
    """The records of an offline run's file once W&B's writer has appended the run's exit record: ``run.finish()``
    returns when the exit is acknowledged, and the writer of the W&B service may put the records on disk later."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = _wandb_records(path)
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {timeout_s} s"
        time.sleep(0.1)


def _wandb(workdir: Path) -> tuple[set[str], Scalars]:
    """(the run ids of the offline run folders, their history merged in time order: a later session's step wins)."""
    folders = sorted((workdir / "wandb").glob("offline-run-*"))
    ids, history = set(), []
    for folder in folders:
        for record in _finished_wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.add(record.run.run_id)
            elif kind == "history":
                items = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
                }
                history.append((items.pop("_timestamp"), record.history.step.num, items))
    merged: Scalars = {}
    for _, step, items in sorted(history, key=lambda entry: entry[0]):
        merged.update({(key, step): value for key, value in items.items() if not key.startswith("_")})
    return ids, merged


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason=f"needs the tracking extra: {INSTALL}")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for variable in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))


def test_tensorboard_scalars_are_the_logged_values(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason=f"needs the tracking extra: {INSTALL}")
    _trainer(tmp_path, "tensorboard").fit()
    logged = _logged(tmp_path)
    assert {step for _, step in logged} == set(LOG_STEPS)
    assert {"topk/loss", "relu/sparsity", "relu/lr", "topk/dead_fraction"} <= {tag for tag, _ in logged}
    assert _tensorboard(tmp_path) == _float32(logged)  # TensorBoard keeps float32


def test_tensorboard_after_a_kill_holds_every_step_once(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason=f"needs the tracking extra: {INSTALL}")
    _killed_and_resumed(tmp_path, "tensorboard")
    logged = _logged(tmp_path)
    assert {step for _, step in logged} == set(LOG_STEPS)
    assert _tensorboard(tmp_path) == _float32(logged)  # step 12, logged before and after the kill, is there once


def test_changing_the_tracking_keeps_the_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason=f"needs the tracking extra: {INSTALL}")
    _trainer(tmp_path).fit(until_step=KILLED_AT)
    resumed = _trainer(tmp_path, "tensorboard")  # not refused as other training settings
    assert resumed.step == CHECKPOINTED_AT
    resumed.fit()
    after = {key: value for key, value in _logged(tmp_path).items() if key[1] > CHECKPOINTED_AT}
    assert _tensorboard(tmp_path) == _float32(after)


@pytest.mark.usefixtures("offline_wandb")
def test_wandb_offline_run_holds_the_logged_values(tmp_path: Path) -> None:
    _trainer(tmp_path, "wandb").fit()
    ids, history = _wandb(tmp_path)
    assert ids == {(tmp_path / WANDB_ID_FILE).read_text().strip()}
    assert history == _logged(tmp_path)  # W&B keeps the float64 values


@pytest.mark.usefixtures("offline_wandb")
def test_wandb_resumed_training_continues_the_same_run(tmp_path: Path) -> None:
    _killed_and_resumed(tmp_path, "wandb")
    ids, history = _wandb(tmp_path)
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2  # one folder per session, one run id
    assert ids == {(tmp_path / WANDB_ID_FILE).read_text().strip()}
    assert history == _logged(tmp_path)


@pytest.mark.parametrize("tracking", ["tensorboard", "wandb"])
def test_a_missing_package_names_the_install_command(
    tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, tracking, None)  # as if not installed
    with pytest.raises(ImportError, match=f"needs the {tracking} package: " + re.escape(INSTALL)):
        _trainer(tmp_path / "run", tracking)
    assert not (tmp_path / "run").exists()


def test_dictlab_imports_without_the_tracking_packages() -> None:
    code = "import sys; sys.modules.update(wandb=None, tensorboard=None); import dictlab.cli.main, dictlab.training"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_tracking_needs_a_workdir() -> None:
    with pytest.raises(ValueError, match="writes into the workdir"):
        _trainer(None, "tensorboard")


def test_dictlab_train_tracks_into_its_run_folder(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason=f"needs the tracking extra: {INSTALL}")
    writer = StoreWriter.open(tmp_path / "store", "toy", {"blocks.0": D}, "float32", {}, np.arange(2), ["a", "b"])
    rows = np.random.default_rng(0).normal(size=(2048, D)).astype(np.float32)
    writer.commit({"blocks.0": rows}, np.arange(2048) % 2, 1, 2048, 2048)
    writer.finish()
    request = StoreTrainRequest(
        store=tmp_path / "store",
        out=tmp_path / "run",
        batch_size=128,
        chunk_rows=128,
        buffer_rows=512,
        steps=6,
        k=3,
        expansion=2,
        progress=False,
        tracking="tensorboard",
    )
    train_on_store(request, echo=lambda _: None)
    assert _tensorboard(tmp_path / "run" / "train") == _float32(_logged(tmp_path / "run" / "train"))
    help_text = CliRunner().invoke(cli, ["train", "--help"]).output
    assert all(option in help_text for option in ("--tracking", "--wandb-project", "--wandb-name", "--wandb-mode"))
    with pytest.raises(ValidationError, match="--wandb-project applies to --tracking wandb"):
        StoreTrainRequest(store=tmp_path / "store", wandb_project="other")
