"""The Neuronpedia export against planted values and the batch layout's documented fields."""

import json
from pathlib import Path

import pytest

from dictlab.features.neuronpedia import neuronpedia_batches, neuronpedia_features, write_neuronpedia
from dictlab.features.report import (
    Context,
    FeatureReport,
    FeatureSource,
    Histogram,
    LatentFeatures,
    Neighbour,
    QuantileBand,
    TokenScore,
)

# The keys of a feature record and of one of its activations, as SAEDashboard's
# NeuronpediaDashboardFeature.to_dict / NeuronpediaDashboardActivation.to_dict write them (jbloomAus/SAEDashboard,
# sae_dashboard/neuronpedia/neuronpedia_dashboard.py @ db4839a41116d729fc9f43c1878e7b8b157748ea; DFA keys are
# optional there and not written here).
FEATURE_FIELDS = {
    "feature_index",
    "neuron_alignment_indices",
    "neuron_alignment_values",
    "neuron_alignment_l1",
    "correlated_neurons_indices",
    "correlated_neurons_l1",
    "correlated_neurons_pearson",
    "correlated_features_indices",
    "correlated_features_l1",
    "correlated_features_pearson",
    "neg_str",
    "neg_values",
    "pos_str",
    "pos_values",
    "frac_nonzero",
    "freq_hist_data_bar_values",
    "freq_hist_data_bar_heights",
    "logits_hist_data_bar_heights",
    "logits_hist_data_bar_values",
    "n_prompts_total",
    "n_tokens_in_prompt",
    "dataset",
    "decoder_weights_dist",
    "activations",
    "vector",
}
ACTIVATION_FIELDS = {"bin_min", "bin_max", "bin_contains", "tokens", "values", "qualifying_token_index"}
BATCH_FIELDS = {"model_id", "layer", "sae_set", "sae_id_suffix", "features"}
# The keys Neuronpedia's import indexes directly (so they must be present), from hijohnnylin/neuronpedia,
# utils/neuronpedia-utils/neuronpedia_utils/convert-saedashboard-to-neuronpedia-export.py
# @ ebb8426fc550ad5d1f76d52c271a624af3c08a57.
IMPORT_FEATURE_KEYS = FEATURE_FIELDS - {"n_prompts_total", "n_tokens_in_prompt", "dataset", "vector"}
IMPORT_ACTIVATION_KEYS = ACTIVATION_FIELDS

VOCAB = {0: "<bos>", 1: " the", 2: " cat", 3: " sat", 4: " on", 5: " mat", 6: ".", 7: " dog", 8: "é"}
ROWS = 1000


def _context(row: int, tokens: list[int], values: list[float | None], centre: int) -> Context:
    value = values[centre]
    assert value is not None
    return Context(row=row, text=row // 10, position=centre, value=value, tokens=tokens, centre=centre, values=values)


def _latent(index: int, **fields) -> LatentFeatures:
    base = dict(
        latent=index,
        count=0,
        density=0.0,
        dead=True,
        mean=0.0,
        max=0.0,
        histogram=Histogram(edges=[0.0, 0.0, 0.0, 0.0], counts=[0, 0, 0]),
        top=[],
        quantiles=[],
        top_token=None,
        top_token_share=0.0,
        cofiring=[],
        decoder=[],
    )
    base.update(fields)
    return LatentFeatures(**base)


def _report() -> FeatureReport:
    top_a = _context(10, [0, 1, 2, 3], [None, 0.0, 3.0, 0.5], 2)
    top_b = _context(20, [1, 7, 3], [0.0, 2.5, 0.0], 1)
    band_high = QuantileBand(
        lower_quantile=0.5,
        upper_quantile=1.0,
        lower=1.5,
        upper=3.0,
        count=20,
        contexts=[_context(30, [4, 5, 6], [0.0, 1.75, 0.25], 1)],
    )
    band_low = QuantileBand(
        lower_quantile=0.0,
        upper_quantile=0.5,
        lower=0.1,
        upper=1.4,
        count=20,
        contexts=[
            _context(40, [2, 8], [0.4, 0.0], 0),
            Context(row=41, text=4, position=0, value=0.3, tokens=[], centre=0, values=[]),
        ],
    )
    live = _latent(
        0,
        count=40,
        density=0.04,
        dead=False,
        mean=1.2,
        max=3.0,
        histogram=Histogram(edges=[0.0, 1.0, 2.0, 3.0], counts=[25, 10, 5]),
        top=[top_a, top_b],
        quantiles=[band_low, band_high],  # ascending, as dictlab stores them
        top_token=2,
        top_token_share=0.5,
        cofiring=[Neighbour(latent=2, score=0.3)],
        decoder=[Neighbour(latent=3, score=0.9)],
        logits_top=[TokenScore(token=2, score=1.5), TokenScore(token=7, score=1.25)],
        logits_bottom=[TokenScore(token=6, score=-2.0), TokenScore(token=8, score=-0.5)],
    )
    dead = _latent(1, logits_top=[TokenScore(token=5, score=0.75)], logits_bottom=[TokenScore(token=4, score=-0.25)])
    quiet = _latent(
        2,
        count=1,
        density=0.001,
        dead=False,
        mean=0.2,
        max=0.2,
        histogram=Histogram(edges=[0.0, 0.1, 0.2], counts=[0, 1]),
        top=[_context(50, [3], [0.2], 0)],
        top_token=3,
        top_token_share=1.0,
    )
    other = _latent(
        3,
        count=2,
        density=0.002,
        dead=False,
        mean=1.0,
        max=1.0,
        histogram=Histogram(edges=[0.0, 0.5, 1.0], counts=[1, 1]),
        top=[_context(60, [1, 2], [1.0, 0.5], 0)],
        top_token=1,
        top_token_share=1.0,
    )
    source = FeatureSource(
        run="runs/demo",
        store="stores/demo",
        module="blocks.3.hook_resid_post",
        model="tiny",
        rows=ROWS,
        first_row=0,
        d_sae=6,
        d_in=8,
        activation="relu",
        window=2,
        label_names=[],
    )
    # Out of order on purpose: the export sorts by latent index.
    return FeatureReport(source=source, latents=[other, dead, live, quiet], vocabulary=VOCAB)


def _by_index(features: list[dict]) -> dict[int, dict]:
    return {f["feature_index"]: f for f in features}


def test_every_feature_has_exactly_the_documented_fields() -> None:
    features = neuronpedia_features(_report())
    assert [f["feature_index"] for f in features] == [0, 1, 2, 3]
    for feature in features:
        assert set(feature) == FEATURE_FIELDS
        assert set(feature) >= IMPORT_FEATURE_KEYS
        for activation in feature["activations"]:
            assert set(activation) == ACTIVATION_FIELDS
            assert set(activation) >= IMPORT_ACTIVATION_KEYS
            assert all(isinstance(t, str) for t in activation["tokens"])
            assert all(isinstance(v, float) for v in activation["values"])
            assert len(activation["tokens"]) == len(activation["values"]) > 0


def test_live_latent_field_by_field() -> None:
    feature = _by_index(neuronpedia_features(_report(), dataset="tiny/corpus", n_prompts_total=7))[0]
    assert feature["frac_nonzero"] == pytest.approx(0.04)
    assert feature["freq_hist_data_bar_values"] == pytest.approx([0.5, 1.5, 2.5])
    assert feature["freq_hist_data_bar_heights"] == [25, 10, 5]
    assert feature["pos_str"] == [" cat", " dog"]
    assert feature["pos_values"] == [1.5, 1.25]
    assert feature["neg_str"] == [".", "é"]
    assert feature["neg_values"] == [-2.0, -0.5]
    assert feature["dataset"] == "tiny/corpus"
    assert feature["n_prompts_total"] == 7
    assert feature["n_tokens_in_prompt"] == 0
    for empty in FEATURE_FIELDS - {
        "feature_index",
        "neg_str",
        "neg_values",
        "pos_str",
        "pos_values",
        "frac_nonzero",
        "freq_hist_data_bar_values",
        "freq_hist_data_bar_heights",
        "n_prompts_total",
        "n_tokens_in_prompt",
        "dataset",
        "activations",
    }:
        assert feature[empty] == [], empty

    acts = feature["activations"]
    # Top group first, then the bands highest first; the token-less context is left out.
    assert [(a["bin_min"], a["bin_max"], a["bin_contains"]) for a in acts] == [
        (-1.0, 3.0, -1.0),
        (-1.0, 3.0, -1.0),
        (1.5, 3.0, 20 / ROWS),
        (0.1, 1.4, 20 / ROWS),
    ]
    assert acts[0]["tokens"] == ["<bos>", " the", " cat", " sat"]
    assert acts[0]["values"] == [0.0, 0.0, 3.0, 0.5]  # None (no store row) written as 0
    assert acts[1]["tokens"] == [" the", " dog", " sat"]
    assert acts[1]["values"] == [0.0, 2.5, 0.0]
    assert acts[2]["tokens"] == [" on", " mat", "."]
    assert acts[3]["tokens"] == [" cat", "é"]
    assert [a["qualifying_token_index"] for a in acts] == [2, 1, 1, 0]
    # What Neuronpedia's import derives: the max value and its token index land on the row's own token.
    for activation in acts:
        values = activation["values"]
        assert values.index(max(values)) == activation["qualifying_token_index"]
    assert max(max(a["values"]) for a in acts) == 3.0  # maxActApprox


def test_dead_latent_is_kept_with_empty_activations() -> None:
    features = _by_index(neuronpedia_features(_report()))
    dead = features[1]
    assert dead["frac_nonzero"] == 0.0
    assert dead["activations"] == []
    assert dead["freq_hist_data_bar_values"] == []
    assert dead["freq_hist_data_bar_heights"] == []
    # The logit lens depends on the decoder row only, so a dead latent keeps it.
    assert dead["pos_str"] == [" mat"]
    assert dead["pos_values"] == [0.75]
    assert dead["neg_str"] == [" on"]
    assert dead["neg_values"] == [-0.25]
    quiet = features[2]
    assert quiet["frac_nonzero"] == pytest.approx(0.001)
    assert quiet["freq_hist_data_bar_heights"] == [0, 1]
    assert quiet["pos_str"] == []
    assert quiet["neg_values"] == []


def test_batches_split_by_batch_size() -> None:
    batches = neuronpedia_batches(_report(), model_id="tiny", layer=3, sae_set="demo-res", batch_size=3)
    assert len(batches) == 2
    for batch in batches:
        assert set(batch) == BATCH_FIELDS
        assert (batch["model_id"], batch["layer"], batch["sae_set"], batch["sae_id_suffix"]) == (
            "tiny",
            3,
            "demo-res",
            None,
        )
    assert [[f["feature_index"] for f in b["features"]] for b in batches] == [[0, 1, 2], [3]]
    assert len(neuronpedia_batches(_report(), model_id="tiny", layer=3, batch_size=4)) == 1
    with pytest.raises(ValueError, match="batch_size"):
        neuronpedia_batches(_report(), model_id="tiny", layer=3, batch_size=0)


def test_write_round_trips_through_json(tmp_path: Path) -> None:
    out = tmp_path / "np"
    out.mkdir()
    (out / "batch-7.json").write_text("{}")  # left from an older, larger export
    (out / "notes.txt").write_text("kept")
    report = _report()
    paths = write_neuronpedia(report, out, model_id="tiny", layer=3, sae_set="demo-res", batch_size=2)
    assert [p.name for p in paths] == ["batch-0.json", "batch-1.json", "skipped_indexes.json"]
    assert sorted(p.name for p in out.iterdir()) == [
        "batch-0.json",
        "batch-1.json",
        "notes.txt",
        "skipped_indexes.json",
    ]
    expected = neuronpedia_batches(report, model_id="tiny", layer=3, sae_set="demo-res", batch_size=2)
    assert [json.loads(p.read_text(encoding="utf-8")) for p in paths[:2]] == expected
    loaded = json.loads(paths[0].read_text(encoding="utf-8"))
    assert loaded["features"][0]["activations"][3]["tokens"] == [" cat", "é"]
    assert json.loads(paths[2].read_text(encoding="utf-8")) == {
        "model_id": "tiny",
        "layer": "3",
        "sae_set": "demo-res",
        "skipped_indexes": [4, 5],
    }


def test_missing_token_string_is_an_error() -> None:
    report = _report()
    del report.vocabulary[7]
    with pytest.raises(ValueError, match="token id 7"):
        neuronpedia_features(report)
