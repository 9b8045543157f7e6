"""dictlab capture on a real (tiny, locally built) transformers model: rows, resume after SIGKILL, pooling, bad
input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from cli_helpers import run_dictlab
from dictlab.cli.main import cli
from dictlab.data.store import ActivationStore, read_manifest
from dictlab.jobs.capture import run_capture
from dictlab.lm.loading import load_language_model
from dictlab.lm.positions import kept_positions
from lm_fixtures import capture_config


def test_rows_are_the_kept_tokens_of_every_text(tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    config = capture_config(tiny_lm_dir, corpus_file, tmp_path / "store", max_texts=200)
    manifest = run_capture(config, echo=lambda _: None)
    lm = load_language_model(tiny_lm_dir)
    texts = corpus_file.read_text().splitlines()[:200]
    encoded = lm.tokenizer(texts, padding=True, return_special_tokens_mask=True, return_tensors="pt")
    keep = kept_positions(encoded["attention_mask"], encoded["special_tokens_mask"], skip_first=1)
    per_text = keep.sum(dim=1).numpy()
    assert manifest.complete and manifest.rows == manifest.tokens_seen == per_text.sum()
    assert manifest.texts_done == 200 and len(manifest.shards) > 3
    store = ActivationStore(tmp_path / "store", "model.layers.0")
    np.testing.assert_array_equal(np.bincount(store.text_index(), minlength=200), per_text)
    # The rows of one text are exactly that text's hidden states at its kept positions, in order.
    index = store.text_index()
    text = int(index[0])
    with torch.inference_mode():
        single = lm.tokenizer([texts[text]], return_special_tokens_mask=True, return_tensors="pt")
        hidden = lm.model.model(
            input_ids=single["input_ids"], attention_mask=single["attention_mask"], output_hidden_states=True
        ).hidden_states[1]  # output of block 0
    expected = hidden[kept_positions(single["attention_mask"], single["special_tokens_mask"], 1)].numpy()
    rows = store.read(0, store.n_rows)[index == text]
    np.testing.assert_allclose(rows, expected, atol=1e-5)
    # Every row's token id and position are those of its text's own tokenization (the MiniLM tokenizer adds [CLS]
    # and [SEP], so positions start at 1 after skip_first = 1 and the contexts hold the special tokens too).
    assert store.has_tokens
    everything = np.arange(store.n_rows)
    ids, where = store.token_ids(everything), store.positions(everything)
    for row in range(0, store.n_rows, 7):
        own = lm.tokenizer(texts[int(index[row])])["input_ids"]
        assert ids[row] == own[where[row]]
        context = store.contexts(np.asarray([row]), 3)[0]
        lo = where[row] - 3
        assert [t for t in context.tolist() if t >= 0] == own[max(lo, 0) : where[row] + 4]


def test_killed_capture_resumes_without_lost_or_duplicated_rows(
    tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    reference = run_capture(capture_config(tiny_lm_dir, corpus_file, tmp_path / "ref"), echo=lambda _: None)
    out = tmp_path / "killed"
    args = [
        "capture",
        "--model",
        str(tiny_lm_dir),
        "--module",
        "layer:0,layer:1",
        "--corpus",
        str(corpus_file),
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--shard-rows",
        "300",
        "--no-progress",
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", "from dictlab.cli.main import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if (out / "manifest.json").exists() and len(read_manifest(out).shards) >= 3:
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    killed = read_manifest(out)
    assert not killed.complete and 3 <= len(killed.shards) < len(reference.shards), "kill came too late to test"
    result = run_dictlab(*args)
    assert result.returncode == 0, result.stderr
    assert "resuming after batch" in result.stdout
    resumed = read_manifest(out)
    assert resumed.complete and resumed.rows == resumed.tokens_seen == reference.rows
    for module in ("model.layers.0", "model.layers.1"):
        a, b = ActivationStore(tmp_path / "ref", module), ActivationStore(out, module)
        # Same rows in the same order (values to float round-off: the subprocess uses more threads).
        np.testing.assert_allclose(a.read(0, a.n_rows), b.read(0, b.n_rows), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(a.text_index(), b.text_index())
    again = run_dictlab(*args)  # a finished capture is left as it is
    assert again.returncode == 0 and "already complete" in again.stdout
    assert read_manifest(out).rows == reference.rows


def test_mean_pooling_gives_one_row_per_text(tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    tokens = run_capture(capture_config(tiny_lm_dir, corpus_file, tmp_path / "tok", max_texts=120), echo=lambda _: None)
    pooled = run_capture(
        capture_config(tiny_lm_dir, corpus_file, tmp_path / "mean", max_texts=120, pool="mean"), echo=lambda _: None
    )
    token_store = ActivationStore(tmp_path / "tok", "model.layers.0")
    mean_store = ActivationStore(tmp_path / "mean", "model.layers.0")
    token_rows, token_text = token_store.read(0, token_store.n_rows), token_store.text_index()
    assert pooled.rows == len(np.unique(token_text)) and pooled.tokens_seen == tokens.rows
    for row, text in zip(mean_store.read(0, mean_store.n_rows), mean_store.text_index(), strict=True):
        np.testing.assert_allclose(row, token_rows[token_text == text].mean(axis=0), atol=1e-5)


def test_max_tokens_and_bad_input(tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    manifest = run_capture(
        capture_config(tiny_lm_dir, corpus_file, tmp_path / "s", max_tokens=500), echo=lambda _: None
    )
    assert 500 <= manifest.rows < 500 + 4 * 25 and manifest.complete
    runner = CliRunner()

    def fails_with(message: str, *args: str) -> None:
        result = runner.invoke(cli, ["capture", "--no-progress", *args])
        assert result.exit_code != 0 and message in result.output, result.output

    common = ["--corpus", str(corpus_file)]
    fails_with(
        "matches no module",
        "--model",
        str(tiny_lm_dir),
        "--module",
        "model.nothing",
        *common,
        "--out",
        str(tmp_path / "x"),
    )
    fails_with(
        "known corpora",
        "--model",
        str(tiny_lm_dir),
        "--module",
        "layer:0",
        "--corpus",
        "no-such-corpus",
        "--out",
        str(tmp_path / "y"),
    )
    fails_with(
        "holds another run: setting",
        *("--model", str(tiny_lm_dir), "--module", "layer:0", *common, "--out", str(tmp_path / "s")),
    )
    fails_with("offline alias", "--model", str(tmp_path), "--module", "layer:0", *common, "--out", str(tmp_path / "z"))
    fails_with("blocks", "--model", str(tiny_lm_dir), "--module", "layer:7", *common, "--out", str(tmp_path / "w"))
