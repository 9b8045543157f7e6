"""``compute_features`` on a planted store: a dictionary whose latent i fires exactly on token i with known values,
so every per-latent number has a known answer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dictlab.data.store import ActivationStore, StoreError, StoreWriter
from dictlab.data.store.tokens import SEPARATOR, ShardTokens
from dictlab.features.compute import FeatureOptions, compute_features
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary

VOCAB = 10  # token ids 0..9; token 9 never occurs, so latent 9 is dead
TWIN = VOCAB  # latent 10 reads token 0 as well: it fires exactly where latent 0 fires
WORDS = [f"w{i}" for i in range(VOCAB)]
LABELS = ["red", "blue", "green"]


def planted_store(root: Path, seed: int = 0, n_texts: int = 40) -> dict[str, np.ndarray]:
    """Texts of random tokens 0..8; one row per position except each text's first (as capture's skip_first = 1);
    row activation = value · e_token. Two shards. Returns the truth per row."""
    rng = np.random.default_rng(seed)
    texts = [rng.integers(0, VOCAB - 1, size=rng.integers(3, 12)) for _ in range(n_texts)]
    text_labels = rng.integers(0, len(LABELS), size=n_texts)
    writer = StoreWriter.open(root, "toy", {"resid": VOCAB}, "float32", {}, text_labels, LABELS, tokens=True)
    truth: dict[str, list] = {"token": [], "value": [], "text": [], "position": []}
    halves = [range(0, n_texts // 2), range(n_texts // 2, n_texts)]
    done = 0
    for number, half in enumerate(halves):
        flat: list[int] = []
        index, text_index, blocks = [], [], []
        for t in half:
            base = len(flat)
            flat.extend([*texts[t].tolist(), SEPARATOR])
            for p in range(1, len(texts[t])):
                value = float(rng.uniform(0.5, 3.0))
                row = np.zeros(VOCAB, np.float32)
                row[texts[t][p]] = value
                blocks.append(row)
                index.append(base + p)
                text_index.append(t)
                for key, item in zip(truth, (int(texts[t][p]), np.float32(value), t, p), strict=True):
                    truth[key].append(item)
        done += len(blocks)
        tokens = ShardTokens(np.asarray(flat, np.int32), np.asarray(index, np.int64))
        writer.commit({"resid": np.stack(blocks)}, np.asarray(text_index), number + 1, half.stop, done, tokens)
    writer.finish()
    out = {key: np.asarray(values) for key, values in truth.items()}
    out["label"] = text_labels[out["text"]]
    out["texts"] = np.asarray(texts, dtype=object)
    return out


def planted_dictionary() -> SparseDictionary:
    cfg = DictionaryConfig(kind="sae", d_in=VOCAB, d_out=VOCAB, d_sae=VOCAB + 1, activation="relu")
    model = SparseDictionary(cfg, torch.Generator().manual_seed(0))
    W_enc = torch.zeros(VOCAB, VOCAB + 1)
    W_enc[:, :VOCAB] = torch.eye(VOCAB)
    W_enc[0, TWIN] = 1.0
    with torch.no_grad():
        model.W_enc.copy_(W_enc)
        model.W_dec.copy_(W_enc.T)
        model.b_enc.zero_()
        model.b_dec.zero_()
    return model


OPTIONS = FeatureOptions(top=5, bands=2, per_band=2, window=3, bins=8, neighbours=3, labels_shown=3)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("store") / "store"
    truth = planted_store(root)
    store = ActivationStore(root)
    report = compute_features(
        planted_dictionary(), store, OPTIONS, decode_tokens=lambda ids: [WORDS[i] for i in ids], progress=False
    )
    return truth, report


def firing_rows(truth: dict[str, np.ndarray], latent: int) -> np.ndarray:
    token = 0 if latent == TWIN else latent
    return np.flatnonzero(truth["token"] == token)


def test_densities_maxima_and_dead_latents(planted) -> None:
    truth, report = planted
    n = truth["token"].size
    assert report.source.rows == n and len(report.latents) == VOCAB + 1
    for record in report.latents:
        rows = firing_rows(truth, record.latent)
        assert record.count == rows.size and record.density == rows.size / n
        assert record.dead == (rows.size == 0)
        if rows.size:
            assert record.max == pytest.approx(float(truth["value"][rows].max()), rel=1e-6)
            assert record.mean == pytest.approx(float(truth["value"][rows].astype(np.float64).mean()), rel=1e-6)
    assert report.latents[VOCAB - 1].dead and report.latents[VOCAB - 1].top == []


def test_top_contexts_are_the_largest_activations_with_their_tokens(planted) -> None:
    truth, report = planted
    texts = truth["texts"]
    for latent in range(VOCAB - 1):
        rows = firing_rows(truth, latent)
        expected = rows[np.lexsort((rows, -truth["value"][rows]))][: OPTIONS.top]
        top = report.latents[latent].top
        assert [c.row for c in top] == expected.tolist()
        for context, row in zip(top, expected, strict=True):
            text, position = int(truth["text"][row]), int(truth["position"][row])
            tokens = texts[text]
            lo, hi = max(position - 3, 0), min(position + 4, len(tokens))
            assert context.tokens == tokens[lo:hi].tolist() and context.centre == position - lo
            assert context.text == text and context.position == position
            assert context.value == float(truth["value"][row])
            # per-token values: the latent's value where the token is its own, 0 elsewhere, None at position 0
            for offset, value in enumerate(context.values):
                p = lo + offset
                if p == 0:
                    assert value is None
                else:
                    own = np.flatnonzero((truth["text"] == text) & (truth["position"] == p))[0]
                    assert value == (float(truth["value"][own]) if tokens[p] == latent else 0.0)
        assert report.latents[latent].top_token == latent and report.latents[latent].top_token_share == 1.0
    assert all(WORDS[i] == report.vocabulary[i] for i in report.vocabulary)


def test_histograms_and_quantile_bands(planted) -> None:
    truth, report = planted
    for latent in range(VOCAB - 1):
        values = truth["value"][firing_rows(truth, latent)].astype(np.float64)
        record = report.latents[latent]
        counts, edges = np.histogram(values, bins=OPTIONS.bins, range=(0.0, values.max()))
        assert record.histogram.counts == counts.tolist()
        assert np.allclose(record.histogram.edges, edges)
        ascending = np.sort(values)
        half = values.size // 2
        low, high = record.quantiles
        assert (low.count, high.count) == (half, values.size - half)
        assert low.lower == ascending[0] and high.upper == ascending[-1]
        assert all(c.value <= low.upper for c in low.contexts) and all(c.value >= high.lower for c in high.contexts)
        assert len(low.contexts) == min(2, half)


def test_label_detection_scores(planted) -> None:
    truth, report = planted
    for latent in range(VOCAB - 1):
        rows = firing_rows(truth, latent)
        record = report.latents[latent]
        for score in record.labels:
            hits = int((truth["label"][rows] == score.label).sum())
            precision = hits / rows.size
            recall = hits / int((truth["label"] == score.label).sum())
            assert score.precision == pytest.approx(precision, abs=1e-12)
            assert score.recall == pytest.approx(recall, abs=1e-12)
            assert score.f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)
        assert record.labels[0].f1 == max(s.f1 for s in record.labels)
        assert record.best_label == record.labels[0].name


def test_cofiring_and_decoder_neighbours_of_the_planted_pair(planted) -> None:
    _, report = planted
    twin, zero = report.latents[TWIN], report.latents[0]
    assert zero.cofiring[0].latent == TWIN and zero.cofiring[0].score == 1.0
    assert twin.cofiring[0].latent == 0 and twin.cofiring[0].score == 1.0
    assert all(n.score == 0 or n.latent in (0, TWIN) for n in zero.cofiring)  # tokens never share a row
    assert zero.decoder[0].latent == TWIN and zero.decoder[0].score == pytest.approx(1.0)
    assert report.latents[3].cofiring == []


def test_store_without_tokens_and_mismatched_width_are_refused(tmp_path: Path) -> None:
    old = StoreWriter.open(tmp_path / "old", "toy", {"resid": VOCAB}, "float32", {}, np.zeros(1), ["x"])
    old.commit({"resid": np.ones((3, VOCAB), np.float32)}, np.zeros(3), 1, 1, 3)
    with pytest.raises(StoreError, match="keeps no token ids"):
        compute_features(planted_dictionary(), ActivationStore(tmp_path / "old"), OPTIONS, progress=False)
    planted_store(tmp_path / "new")
    cfg = DictionaryConfig(kind="sae", d_in=VOCAB + 2, d_out=VOCAB + 2, d_sae=4, activation="relu")
    narrow = SparseDictionary(cfg, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="12-wide inputs"):
        compute_features(narrow, ActivationStore(tmp_path / "new"), OPTIONS, progress=False)
    with pytest.raises(StoreError, match="more rows than the store has"):
        compute_features(
            planted_dictionary(), ActivationStore(tmp_path / "new"), FeatureOptions(rows=10**6), progress=False
        )
