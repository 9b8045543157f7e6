"""Export a :class:`~dictlab.features.report.FeatureReport` in the feature JSON layout that Neuronpedia imports.

The layout is the one SAEDashboard's Neuronpedia runner writes and Neuronpedia's import converts: a folder of
``batch-0.json``, ``batch-1.json``, ... each holding ``{model_id, layer, sae_set, sae_id_suffix, features: [...]}``,
plus ``skipped_indexes.json`` naming the latents that no batch holds. Sources, read at these commits:

- jbloomAus/SAEDashboard @ db4839a41116d729fc9f43c1878e7b8b157748ea:
  ``sae_dashboard/neuronpedia/neuronpedia_dashboard.py`` (batch, feature and activation fields, their empty
  values), ``sae_dashboard/neuronpedia/neuronpedia_converter.py`` (bins of the top and interval groups),
  ``sae_dashboard/neuronpedia/neuronpedia_runner.py`` (file names, ``skipped_indexes.json``),
  ``sae_dashboard/sequence_data_generator.py`` (what an interval's share counts),
  ``sae_dashboard/utils_fns.py`` (histogram bars at bin centres),
  ``tests/acceptance/test_simple/batch-0.json`` (a dead feature inside a batch).
- hijohnnylin/neuronpedia @ ebb8426fc550ad5d1f76d52c271a624af3c08a57:
  ``utils/neuronpedia-utils/neuronpedia_utils/convert-saedashboard-to-neuronpedia-export.py`` (the keys the
  import reads), ``apps/webapp/prisma/schema.prisma`` (``Neuron``, ``Activation``),
  ``apps/webapp/app/api/admin/upload-skipped-features/route.tsx`` (``skipped_indexes.json``).

Filled from the report: ``feature_index`` (latent), ``frac_nonzero`` (density), ``freq_hist_data_bar_values`` /
``_heights`` (histogram bin centres / counts of the nonzero activations), ``pos_str`` / ``pos_values`` and
``neg_str`` / ``neg_values`` (logit lens, top and bottom), ``activations`` (top contexts as the top group,
``bin_min = bin_contains = -1`` and ``bin_max`` = the latent's max; then the quantile bands, highest first, as
intervals with ``bin_min``/``bin_max`` = the band's smallest/largest activation and ``bin_contains`` = the band's
share of all rows read), ``qualifying_token_index`` (the context's centre). Context values that the store lacks
(None) are written as 0; contexts without tokens are left out. ``dataset``, ``n_prompts_total`` and
``n_tokens_in_prompt`` are whatever the caller passes (default: their empty values).

Written empty, as dictlab computes no equivalent: ``neuron_alignment_*`` and ``correlated_neurons_*`` (need the
model's neuron basis), ``correlated_features_*`` (Pearson/cosine of activations; dictlab's co-firing is a Jaccard
index and its decoder neighbours a decoder cosine, neither of which these fields mean), ``logits_hist_data_*``
(the report keeps only the ends of the logit lens, not its distribution), ``decoder_weights_dist`` (per-head
attribution of attention-output SAEs) and ``vector``. DFA and loss fields are optional and left out.

Dead latents are kept in the batches with ``frac_nonzero = 0``, empty histogram bars and no activations, as
SAEDashboard's own batches keep them; ``skipped_indexes.json`` lists only the latents below ``d_sae`` that the
report does not cover.
"""

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

from dictlab.features.report import Context, FeatureReport, LatentFeatures, TokenScore

TOP_GROUP = -1.0
"""``bin_min`` and ``bin_contains`` of the top-activations group."""

_BATCH_NAME = re.compile(r"batch-(\d+)\.json")


def neuronpedia_features(
    report: FeatureReport, *, dataset: str = "", n_prompts_total: int = 0, n_tokens_in_prompt: int = 0
) -> list[dict[str, Any]]:
    """One feature record of the batch layout per latent, ordered by latent index."""
    return [
        _feature(latent, report, dataset, n_prompts_total, n_tokens_in_prompt)
        for latent in sorted(report.latents, key=lambda latent: latent.latent)
    ]


def neuronpedia_batches(
    report: FeatureReport,
    *,
    model_id: str,
    layer: int | str,
    sae_set: str = "dictlab",
    sae_id_suffix: str | None = None,
    batch_size: int = 128,
    dataset: str = "",
    n_prompts_total: int = 0,
    n_tokens_in_prompt: int = 0,
) -> list[dict[str, Any]]:
    """The ``batch-N.json`` documents: consecutive runs of ``batch_size`` feature records.

    Neuronpedia names the source ``{layer}-{sae_set}`` (``__{sae_id_suffix}`` appended when given); ``layer`` is
    normally the layer number.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    features = neuronpedia_features(
        report, dataset=dataset, n_prompts_total=n_prompts_total, n_tokens_in_prompt=n_tokens_in_prompt
    )
    return [
        {
            "model_id": model_id,
            "layer": layer,
            "sae_set": sae_set,
            "sae_id_suffix": sae_id_suffix,
            "features": features[start : start + batch_size],
        }
        for start in range(0, len(features), batch_size)
    ]


def write_neuronpedia(
    report: FeatureReport,
    out: Path,
    *,
    model_id: str,
    layer: int | str,
    sae_set: str = "dictlab",
    sae_id_suffix: str | None = None,
    batch_size: int = 128,
    dataset: str = "",
    n_prompts_total: int = 0,
    n_tokens_in_prompt: int = 0,
) -> list[Path]:
    """Write ``batch-N.json`` and ``skipped_indexes.json`` into ``out``; returns their paths in that order.

    Older ``batch-N.json`` files in ``out`` beyond this export's last batch are removed, so the folder holds one
    export.
    """
    batches = neuronpedia_batches(
        report,
        model_id=model_id,
        layer=layer,
        sae_set=sae_set,
        sae_id_suffix=sae_id_suffix,
        batch_size=batch_size,
        dataset=dataset,
        n_prompts_total=n_prompts_total,
        n_tokens_in_prompt=n_tokens_in_prompt,
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, batch in enumerate(batches):
        path = out / f"batch-{number}.json"
        path.write_text(json.dumps(batch, allow_nan=False), encoding="utf-8")
        paths.append(path)
    for stale in out.iterdir():
        match = _BATCH_NAME.fullmatch(stale.name)
        if match and int(match.group(1)) >= len(batches) and stale.is_file():
            stale.unlink()
    covered = {latent.latent for latent in report.latents}
    skipped = {
        "model_id": model_id,
        "layer": str(layer),
        "sae_set": sae_set,
        "skipped_indexes": [index for index in range(report.source.d_sae) if index not in covered],
    }
    path = out / "skipped_indexes.json"
    path.write_text(json.dumps(skipped), encoding="utf-8")
    paths.append(path)
    return paths


def _feature(
    latent: LatentFeatures, report: FeatureReport, dataset: str, n_prompts_total: int, n_tokens_in_prompt: int
) -> dict[str, Any]:
    histogram = latent.histogram
    live = not latent.dead and sum(histogram.counts) > 0
    edges = histogram.edges
    pos_str, pos_values = _scores(latent.logits_top, report.vocabulary)
    neg_str, neg_values = _scores(latent.logits_bottom, report.vocabulary)
    return {
        "feature_index": latent.latent,
        "neuron_alignment_indices": [],
        "neuron_alignment_values": [],
        "neuron_alignment_l1": [],
        "correlated_neurons_indices": [],
        "correlated_neurons_l1": [],
        "correlated_neurons_pearson": [],
        "correlated_features_indices": [],
        "correlated_features_l1": [],
        "correlated_features_pearson": [],
        "neg_str": neg_str,
        "neg_values": neg_values,
        "pos_str": pos_str,
        "pos_values": pos_values,
        "frac_nonzero": float(latent.density),
        "freq_hist_data_bar_values": [(float(a) + float(b)) / 2 for a, b in pairwise(edges)] if live else [],
        "freq_hist_data_bar_heights": [int(count) for count in histogram.counts] if live else [],
        "logits_hist_data_bar_heights": [],
        "logits_hist_data_bar_values": [],
        "n_prompts_total": n_prompts_total,
        "n_tokens_in_prompt": n_tokens_in_prompt,
        "dataset": dataset,
        "decoder_weights_dist": [],
        "activations": _activations(latent, report) if not latent.dead else [],
        "vector": [],
    }


def _activations(latent: LatentFeatures, report: FeatureReport) -> list[dict[str, Any]]:
    rows = report.source.rows
    found = [_activation(c, TOP_GROUP, latent.max, TOP_GROUP, report.vocabulary) for c in latent.top if c.tokens]
    for band in sorted(latent.quantiles, key=lambda band: band.upper_quantile, reverse=True):
        share = band.count / rows if rows else 0.0
        found += [_activation(c, band.lower, band.upper, share, report.vocabulary) for c in band.contexts if c.tokens]
    return found


def _activation(
    context: Context, bin_min: float, bin_max: float, bin_contains: float, vocabulary: dict[int, str]
) -> dict[str, Any]:
    return {
        "bin_min": float(bin_min),
        "bin_max": float(bin_max),
        "bin_contains": float(bin_contains),
        "tokens": [_token(token, vocabulary) for token in context.tokens],
        "values": [0.0 if value is None else float(value) for value in context.values],
        "qualifying_token_index": context.centre,
    }


def _scores(scores: list[TokenScore], vocabulary: dict[int, str]) -> tuple[list[str], list[float]]:
    return [_token(s.token, vocabulary) for s in scores], [float(s.score) for s in scores]


def _token(token: int, vocabulary: dict[int, str]) -> str:
    try:
        return vocabulary[token]
    except KeyError:
        raise ValueError(f"token id {token} is missing from the report's vocabulary") from None
