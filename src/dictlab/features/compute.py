"""``compute_features``: everything about every latent from one streaming pass of a dictionary over a store."""

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dictlab.data.store import ActivationStore, StoreError
from dictlab.features.codes import PassCodes, encode_store
from dictlab.features.contexts import ContextBlock, PassRows, context_block, trimmed
from dictlab.features.logit_lens import logit_lens
from dictlab.features.report import (
    Context,
    FeatureReport,
    FeatureSource,
    Histogram,
    LabelScore,
    LatentDiagnosis,
    LatentFeatures,
    Neighbour,
    QuantileBand,
    TokenScore,
)
from dictlab.features.statistics import (
    SortedCodes,
    cofiring_neighbours,
    decoder_neighbours,
    detection_scores,
    firing_summary,
    histograms,
    label_counts,
    quantile_bands,
)
from dictlab.models.dictionary import SparseDictionary
from dictlab.stopwatch import Stopwatch

TokenDecoder = Callable[[Sequence[int]], list[str]]
"""Token ids -> their decoded texts, one string per id."""


class FeatureOptions(BaseModel):
    """How much ``dictlab features`` collects per latent."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rows: int | None = Field(default=None, gt=0, description="Read this many store rows (default: all).")
    first_row: int = Field(default=0, ge=0, description="First store row of the pass.")
    top: int = Field(default=20, ge=1, description="Top-activating contexts per latent (exact).")
    bands: int = Field(default=5, ge=0, description="Quantile bands of each latent's nonzero activations.")
    per_band: int = Field(default=3, ge=0, description="Contexts per quantile band (evenly spaced by rank).")
    window: int = Field(default=8, ge=0, description="Tokens of context on each side of the row's token.")
    bins: int = Field(default=32, ge=1, description="Histogram bins from 0 to each latent's maximum.")
    neighbours: int = Field(default=10, ge=0, description="Co-firing and decoder-cosine neighbours per latent.")
    logit_tokens: int = Field(default=10, ge=0, description="Top and bottom logit-lens tokens per latent.")
    labels_shown: int = Field(default=5, ge=0, description="Classes listed per latent, best F1 first.")
    chunk_rows: int = Field(default=4096, gt=0, description="Rows encoded at once (bounds the dense work).")


def pass_range(store: ActivationStore, options: FeatureOptions) -> tuple[int, int]:
    """(first row, row count) of the pass; StoreError for an empty store or a range outside it."""
    if store.n_rows == 0:
        raise StoreError(f"{store.root} holds no rows; capture some first")
    if options.first_row >= store.n_rows:
        raise StoreError(f"--first-row {options.first_row} is beyond the store's {store.n_rows:,} rows")
    available = store.n_rows - options.first_row
    if options.rows is not None and options.rows > available:
        raise StoreError(
            f"--rows {options.rows:,} asks for more rows than the store has from row {options.first_row:,} "
            f"({available:,})"
        )
    return options.first_row, available if options.rows is None else options.rows


def compute_features(
    dictionary: SparseDictionary,
    store: ActivationStore,
    options: FeatureOptions | None = None,
    *,
    decode_tokens: TokenDecoder | None = None,
    lm_model: nn.Module | None = None,
    diagnoses: Callable[[PassCodes], tuple[list[LatentDiagnosis], dict]] | None = None,
    run: str = "",
    progress: bool = True,
) -> FeatureReport:
    """Per-latent statistics, contexts and neighbours of ``dictionary`` over rows of ``store``.

    Args:
        decode_tokens: decoded text of token ids (default: the ids as text).
        lm_model: a causal LM whose final norm and unembedding give the logit lens (None: no logit lens).
        diagnoses: called with the pass's codes, returns one diagnosis per latent and headline numbers.
    """
    options = options or FeatureOptions()
    store.require_tokens("dictlab features")
    cfg = dictionary.cfg
    if cfg.d_in != store.width:
        raise ValueError(
            f"the dictionary reads {cfg.d_in}-wide inputs but module {store.entry.name!r} of {store.root} is "
            f"{store.width} wide: choose the store (or --module) the dictionary was trained on"
        )
    first, n_rows = pass_range(store, options)
    clock = Stopwatch()
    codes = encode_store(dictionary, store, first, n_rows, chunk_rows=options.chunk_rows, progress=progress)
    clock.lap("encode")
    rows_info = PassRows.read(store, first, n_rows)
    sorted_codes = SortedCodes.of(codes)
    counts, means, maxima = firing_summary(sorted_codes)
    hist = histograms(sorted_codes, maxima, options.bins)
    clock.lap("statistics")
    co_latents, co_scores = cofiring_neighbours(codes, counts, options.neighbours)
    clock.lap("cofiring")
    dec_latents, dec_scores = decoder_neighbours(dictionary.W_dec, options.neighbours)
    clock.lap("decoder_neighbours")
    lens = None
    if lm_model is not None and options.logit_tokens:
        lens = [t.numpy() for t in logit_lens(lm_model, dictionary.W_dec, options.logit_tokens)]
    clock.lap("logit_lens")
    label_names = store.label_names
    labels = None
    if len(label_names) > 1:
        row_labels = store.labels()[first : first + n_rows]
        joint, per_label = label_counts(codes, row_labels, len(label_names))
        precision, recall, f1 = detection_scores(joint, counts, per_label)
        labels = (row_labels, precision, recall, f1)
    diagnosis_list, headline = None, None
    if diagnoses is not None:
        diagnosis_list, headline = diagnoses(codes)
        clock.lap("diagnose")
    picks = _context_picks(sorted_codes, counts, options)
    block = context_block(store, codes, rows_info, picks.latents, picks.rows, options.window)
    clock.lap("contexts")
    latents = []
    mentioned: set[int] = set()
    for latent in range(codes.d_sae):
        record = _latent_record(
            latent,
            codes,
            sorted_codes,
            rows_info,
            picks,
            block,
            options,
            counts,
            means,
            maxima,
            hist,
            labels,
            label_names,
            (co_latents, co_scores, dec_latents, dec_scores),
            lens,
        )
        if diagnosis_list is not None:
            record.diagnosis = diagnosis_list[latent]
        for context in record.top + [c for band in record.quantiles for c in band.contexts]:
            mentioned.update(context.tokens)
        mentioned.update(t.token for t in record.logits_top + record.logits_bottom)
        latents.append(record)
    ids = sorted(mentioned)
    texts = decode_tokens(ids) if decode_tokens is not None else [str(i) for i in ids]
    clock.lap("records")
    source = FeatureSource(
        run=run,
        store=str(store.root),
        module=store.entry.name,
        model=store.manifest.model,
        rows=n_rows,
        first_row=first,
        d_sae=codes.d_sae,
        d_in=cfg.d_in,
        activation=cfg.activation,
        window=options.window,
        label_names=label_names,
    )
    return FeatureReport(
        source=source,
        latents=latents,
        vocabulary=dict(zip(ids, texts, strict=True)),
        seconds=clock.seconds,
        diagnosis=headline,
    )


class _Picks:
    """The (latent, row) pairs whose contexts are shown: ``latents``, ``rows`` (pass rows) int64 [n];
    ``where[(latent, kind, band)]`` their positions in those arrays ('top' or 'band')."""

    def __init__(self) -> None:
        self.latent_parts: list[np.ndarray] = []
        self.row_parts: list[np.ndarray] = []
        self.where: dict[tuple[int, str, int], np.ndarray] = {}
        self.size = 0

    def add(self, latent: int, kind: str, band: int, rows: np.ndarray) -> None:
        self.latent_parts.append(np.full(rows.size, latent, np.int64))
        self.row_parts.append(rows.astype(np.int64))
        self.where[(latent, kind, band)] = np.arange(self.size, self.size + rows.size)
        self.size += rows.size

    def close(self) -> None:
        self.latents = np.concatenate(self.latent_parts) if self.latent_parts else np.zeros(0, np.int64)
        self.rows = np.concatenate(self.row_parts) if self.row_parts else np.zeros(0, np.int64)


def _context_picks(sorted_codes: SortedCodes, counts: np.ndarray, options: FeatureOptions) -> _Picks:
    picks = _Picks()
    for latent in np.flatnonzero(counts):
        start, count = int(sorted_codes.starts[latent]), int(counts[latent])
        picks.add(int(latent), "top", 0, sorted_codes.rows[start : start + min(options.top, count)])
        for band, (_, _, ranks) in enumerate(quantile_bands(count, options.bands, options.per_band)):
            picks.add(int(latent), "band", band, sorted_codes.rows[start + count - 1 - ranks])  # ascending ranks
    picks.close()
    return picks


def _contexts(
    picks: _Picks, block: ContextBlock, rows_info: PassRows, codes: PassCodes, key: tuple[int, str, int], window: int
) -> list[Context]:
    out = []
    for i in picks.where.get(key, np.zeros(0, np.int64)):
        row = int(picks.rows[i])
        tokens, centre, values = trimmed(block.tokens[i], block.values[i], window)
        value = values[centre] if tokens else 0.0
        out.append(
            Context.model_construct(
                row=row + codes.first_row,
                text=int(rows_info.text[row]),
                position=int(rows_info.position[row]),
                value=float(value or 0.0),
                tokens=tokens,
                centre=centre,
                values=values,
                ablation_effect=None,
            )
        )
    return out


def _latent_record(
    latent: int,
    codes: PassCodes,
    sorted_codes: SortedCodes,
    rows_info: PassRows,
    picks: _Picks,
    block: ContextBlock,
    options: FeatureOptions,
    counts: np.ndarray,
    means: np.ndarray,
    maxima: np.ndarray,
    hist: np.ndarray,
    labels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
    label_names: list[str],
    neighbours: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    lens: list[np.ndarray] | None,
) -> LatentFeatures:
    count = int(counts[latent])
    top = _contexts(picks, block, rows_info, codes, (latent, "top", 0), options.window)
    bands = []
    start = int(sorted_codes.starts[latent])
    for band, (lo, hi, _) in enumerate(quantile_bands(count, options.bands, options.per_band)):
        if hi <= lo:
            continue
        ascending = sorted_codes.values[start : start + count][::-1]
        bands.append(
            QuantileBand.model_construct(
                lower_quantile=band / options.bands,
                upper_quantile=(band + 1) / options.bands,
                lower=float(ascending[lo]),
                upper=float(ascending[hi - 1]),
                count=hi - lo,
                contexts=_contexts(picks, block, rows_info, codes, (latent, "band", band), options.window),
            )
        )
    current = [c.tokens[c.centre] for c in top if c.tokens]
    top_token, share = _most_common(current)
    co_latents, co_scores, dec_latents, dec_scores = neighbours
    record = LatentFeatures.model_construct(
        latent=latent,
        count=count,
        density=count / max(codes.n_rows, 1),
        dead=count == 0,
        mean=float(means[latent]),
        max=float(maxima[latent]),
        histogram=Histogram.model_construct(
            edges=(np.arange(options.bins + 1) * (maxima[latent] / options.bins)).tolist(),
            counts=hist[latent].tolist(),
        ),
        top=top,
        quantiles=bands,
        top_token=top_token,
        top_token_share=share,
        cofiring=[
            Neighbour.model_construct(latent=int(j), score=float(s))
            for j, s in zip(co_latents[latent], co_scores[latent], strict=True)
            if j >= 0
        ],
        decoder=[
            Neighbour.model_construct(latent=int(j), score=float(s))
            for j, s in zip(dec_latents[latent], dec_scores[latent], strict=True)
            if j >= 0
        ],
        logits_top=[],
        logits_bottom=[],
        labels=[],
        best_label=None,
        top_label_share=None,
        diagnosis=None,
    )
    if lens is not None:
        top_ids, top_scores, bottom_ids, bottom_scores = lens
        record.logits_top = [
            TokenScore.model_construct(token=int(t), score=float(s))
            for t, s in zip(top_ids[latent], top_scores[latent], strict=True)
        ]
        record.logits_bottom = [
            TokenScore.model_construct(token=int(t), score=float(s))
            for t, s in zip(bottom_ids[latent], bottom_scores[latent], strict=True)
        ]
    if labels is not None and count:
        row_labels, precision, recall, f1 = labels
        order = np.argsort(-f1[latent], kind="stable")[: options.labels_shown]
        record.labels = [
            LabelScore.model_construct(
                label=int(c),
                name=label_names[c],
                precision=float(precision[latent, c]),
                recall=float(recall[latent, c]),
                f1=float(f1[latent, c]),
            )
            for c in order
        ]
        record.best_label = label_names[int(order[0])] if order.size else None
        top_rows = np.asarray([c.row - codes.first_row for c in top], np.int64)
        _, record.top_label_share = _most_common(row_labels[top_rows].tolist()) if top_rows.size else (None, 0.0)
    return record


def _most_common(values: list[int]) -> tuple[int | None, float]:
    """(most common value, its share) of ``values``; ties go to the smaller value; (None, 0) when empty."""
    if not values:
        return None, 0.0
    found, counts = np.unique(np.asarray(values), return_counts=True)
    best = int(np.argmax(counts))
    return int(found[best]), float(counts[best] / len(values))
