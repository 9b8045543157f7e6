"""k-sparse probing on a planted store: class c turns on direction e_c on some of its tokens, the class "quiet" is
the one whose texts lack the background direction e_3, and the planted SAE's latent j reads e_j — so the right
latent, its sign and the pooled values are known."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dictlab.data.store import ActivationStore, StoreWriter
from dictlab.evals.probing import (
    EVAL_TYPE_ID,
    ProbingOptions,
    SparseProbingResult,
    markdown_table,
    pooled_codes,
    probing_baselines,
    probing_data,
    sparse_probing,
    top_k_mean_diff,
)
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary

D = 64
LABELS = ["a", "b", "c", "quiet"]
BACKGROUND = 3  # on in every token of classes a, b, c; off in "quiet"
NOISE = 0.5
TEXTS_PER_CLASS = 100
OPTIONS = ProbingOptions(ks=(1, 2, 5), min_class_texts=20, batch_size=97, seed=0)


def write_planted_store(
    root: Path, label_names: list[str] = LABELS, per_class: int = TEXTS_PER_CLASS, settings: dict | None = None
) -> dict:
    """Two shards of texts of 4–16 rows (batches of 97 rows cut through texts); two extra texts with labels but no
    rows. Row = N(0, NOISE²) + background + (on 40 % of the text's tokens) 2·e_label. Returns rows and texts."""
    rng = np.random.default_rng(0)
    n_classes = len(label_names)
    text_labels = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(text_labels)
    all_labels = np.concatenate([text_labels, [0, 1]])  # texts n and n+1: labelled, never captured
    writer = StoreWriter.open(root, "toy", {"resid": D}, "float32", settings or {}, all_labels, label_names)
    rows, text_of_row = [], []
    for t, label in enumerate(text_labels):
        n = int(rng.integers(4, 17))
        x = rng.normal(0.0, NOISE, size=(n, D)).astype(np.float32)
        if n_classes > 1 and label_names[label] != "quiet":
            x[:, BACKGROUND] += 1.0
            if label != BACKGROUND:
                x[rng.permutation(n)[: max(1, round(0.4 * n))], label] += 2.0
        rows.append(x)
        text_of_row += [t] * n
    x_all, index = np.concatenate(rows), np.asarray(text_of_row)
    half = int(np.searchsorted(index, len(text_labels) // 2))
    for number, (lo, hi) in enumerate([(0, half), (half, len(index))]):
        writer.commit({"resid": x_all[lo:hi]}, index[lo:hi], number + 1, int(index[hi - 1]) + 1, hi)
    writer.finish()
    return {"x": x_all, "text": index, "labels": text_labels}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[ActivationStore, dict]:
    root = tmp_path_factory.mktemp("probing") / "store"
    truth = write_planted_store(root)
    return ActivationStore(root), truth


def planted_dictionary() -> SparseDictionary:
    """ReLU SAE with latent j = relu(x_j) for j < D and D dead latents after them."""
    cfg = DictionaryConfig(kind="sae", d_in=D, d_out=D, d_sae=2 * D, activation="relu")
    model = SparseDictionary(cfg, torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.W_enc.zero_()
        model.W_enc[:, :D] = torch.eye(D)
        model.W_dec.copy_(model.W_enc.T)
        model.b_enc.zero_()
        model.b_dec.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def result(planted) -> SparseProbingResult:
    store, _ = planted
    data = probing_data(store, OPTIONS)
    return sparse_probing(planted_dictionary(), store, data, OPTIONS)


def test_pooling_is_the_mean_over_each_texts_rows(planted) -> None:
    store, truth = planted
    data = probing_data(store, OPTIONS)
    assert data.texts.tolist() == sorted(set(truth["text"].tolist()))  # the two row-less texts are left out
    for slot in (0, 17, len(data.texts) - 1):
        rows = truth["x"][truth["text"] == data.texts[slot]]
        assert data.counts[slot] == len(rows)
        np.testing.assert_allclose(data.pooled[slot], rows.mean(0), rtol=1e-5, atol=1e-6)
    assert [data.class_names[c] for c in data.labels] == [LABELS[truth["labels"][t]] for t in data.texts]
    codes = pooled_codes(planted_dictionary(), store, data, OPTIONS)
    assert codes.shape == (len(data.texts), 2 * D)
    for slot in (3, 50):
        rows = truth["x"][truth["text"] == data.texts[slot]]
        np.testing.assert_allclose(codes[slot, :D], np.maximum(rows, 0).mean(0), rtol=1e-5, atol=1e-6)  # mean of codes
        assert not np.allclose(codes[slot, :D], np.maximum(rows.mean(0), 0), atol=1e-3)  # not codes of the mean
    assert not codes[:, D:].any()


def test_tasks_are_balanced_one_vs_rest_within_each_split(planted) -> None:
    store, _ = planted
    data = probing_data(store, OPTIONS)
    assert not set(data.train) & set(data.test)
    assert len(data.test) == pytest.approx(0.2 * len(data.texts), abs=len(LABELS))
    for c, task in enumerate(data.tasks):
        assert set(task.train) <= set(data.train) and set(task.test) <= set(data.test)
        for slots, y in ((task.train, task.train_y), (task.test, task.test_y)):
            assert y.sum() * 2 == len(y) and len(set(slots)) == len(slots)
            assert (data.labels[slots] == c).tolist() == (y == 1).tolist()
            assert set(data.labels[slots[y == 0]]) == set(range(len(LABELS))) - {c}  # negatives from every other class


def test_text_caps_keep_classes_equal(planted) -> None:
    store, _ = planted
    data = probing_data(store, OPTIONS.model_copy(update={"max_texts": 200}))
    assert np.bincount(data.labels).tolist() == [50, 50, 50, 50]
    data = probing_data(store, OPTIONS.model_copy(update={"max_texts_per_class": 30, "classes": ("quiet", "a")}))
    assert data.class_names == ["quiet", "a"] and np.bincount(data.labels).tolist() == [30, 30]
    with pytest.raises(ValueError, match="raise max_texts"):
        probing_data(store, OPTIONS.model_copy(update={"max_texts": 40}))


def test_mean_difference_ranks_by_absolute_value() -> None:
    x = np.zeros((4, 3))
    x[:2, 0] = 1.0  # +1 on positives
    x[2:, 1] = 3.0  # fires on negatives only: the largest |difference|
    x[:2, 2] = 0.5
    dims, diffs = top_k_mean_diff(x, np.asarray([1, 1, 0, 0]), 2)
    assert dims.tolist() == [1, 0]
    assert diffs.tolist() == [-3.0, 1.0]


def test_planted_latents_are_found_and_beat_the_baselines(result: SparseProbingResult) -> None:
    by_name = {c.name: c for c in result.sae.classes}
    for label in ("a", "b", "c"):
        probes = by_name[label]
        assert probes.top_dims[0] == LABELS.index(label) and probes.top_diffs[0] > 0.5
        assert probes.top_k[1].accuracy >= 0.95 and probes.top_k[1].f1 >= 0.95
    quiet = by_name["quiet"]  # told apart by the background latent being OFF: needs the absolute difference
    assert quiet.top_dims[0] == BACKGROUND and quiet.top_diffs[0] < -0.5
    assert quiet.top_k[1].accuracy >= 0.95
    sae_1 = result.sae.mean(1)
    random_1 = result.baselines.random_sae.mean(1)
    assert sae_1 is not None and random_1 is not None
    assert sae_1 >= 0.95 and random_1 < sae_1 - 0.1
    dense = result.baselines.llm.mean(None)
    assert dense is not None and dense >= 0.95
    pca_1, pca_5 = result.baselines.pca.mean(1), result.baselines.pca.mean(5)
    assert pca_1 is not None and pca_5 is not None
    assert pca_5 >= 0.9 and pca_1 < pca_5  # 4 class directions: one component is not enough, five are
    raw_1 = result.baselines.llm.mean(1)  # the raw basis is the planted one here
    assert raw_1 is not None and raw_1 >= 0.9


def test_metrics_details_table_and_json(result: SparseProbingResult) -> None:
    assert EVAL_TYPE_ID == "sparse_probing"
    metrics = result.saebench_metrics()
    assert set(metrics) == {"llm", "sae", "dictlab"}
    assert set(metrics["sae"]) == {
        "sae_test_accuracy",
        "sae_top_1_test_accuracy",
        "sae_top_2_test_accuracy",
        "sae_top_5_test_accuracy",
    }
    assert set(metrics["llm"]) == {k.replace("sae", "llm") for k in metrics["sae"]}
    assert metrics["sae"]["sae_top_1_test_accuracy"] == result.sae.mean(1)
    assert metrics["dictlab"]["random_sae_top_1_test_accuracy"] == result.baselines.random_sae.mean(1)
    assert "pca_top_5_test_accuracy" in metrics["dictlab"]
    details = result.saebench_details()
    assert details[0]["dataset_name"] == "store" and details[0]["sae_top_1_test_accuracy"] == result.sae.mean(1)
    table = markdown_table(result)
    row = next(line for line in table.splitlines() if line.startswith("| 1 |"))
    assert row.split("|")[2].strip() == f"{result.sae.mean(1):.3f}"
    assert row.split("|")[3].strip() == f"{result.baselines.random_sae.mean(1):.3f}"
    assert table.splitlines()[-1].startswith("| all |")
    assert SparseProbingResult.model_validate_json(result.model_dump_json()) == result


def test_baselines_are_reusable_and_depend_on_the_config(planted, result: SparseProbingResult) -> None:
    store, _ = planted
    data = probing_data(store, OPTIONS)
    cfg = planted_dictionary().cfg
    again = probing_baselines(store, data, cfg, OPTIONS)
    assert again == result.baselines  # same seed, same texts: identical (what makes caching them sound)
    reused = sparse_probing(planted_dictionary(), store, data, OPTIONS, baselines=again)
    assert reused.sae == result.sae
    codes = pooled_codes(planted_dictionary(), store, data, OPTIONS)
    for task, probes in zip(data.tasks, result.sae.classes, strict=True):  # ranked on the training texts only
        train, y = codes[task.train], task.train_y
        diff = train[y == 1].mean(0) - train[y == 0].mean(0)
        np.testing.assert_allclose(probes.top_diffs, diff[probes.top_dims], rtol=1e-5, atol=1e-6)


def test_stores_without_two_labelled_classes_are_refused(tmp_path: Path) -> None:
    write_planted_store(tmp_path / "one", ["unlabelled"], per_class=30)
    with pytest.raises(ValueError, match=r"manifest\.json.*label_names"):
        probing_data(ActivationStore(tmp_path / "one"), OPTIONS)
    write_planted_store(tmp_path / "few", ["a", "b"], per_class=10)
    with pytest.raises(ValueError, match=r"at least two classes with >= 20 texts.*manifest\.json.*label_names"):
        probing_data(ActivationStore(tmp_path / "few"), OPTIONS)
    write_planted_store(tmp_path / "pooled", ["a", "b"], per_class=20, settings={"pool": "mean"})
    with pytest.raises(ValueError, match=r"manifest\.json: settings\.pool"):
        probing_data(ActivationStore(tmp_path / "pooled"), OPTIONS)
    with pytest.raises(ValueError, match="not among the label_names"):
        probing_data(ActivationStore(tmp_path / "few"), OPTIONS.model_copy(update={"classes": ("zebra",)}))
