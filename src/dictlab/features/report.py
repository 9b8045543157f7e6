"""What ``dictlab features`` finds out about every latent: the typed records behind features.json, the browser and
the Neuronpedia export.

Token ids are kept as ids; their strings live once in :attr:`FeatureReport.vocabulary` (id → decoded text).
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Context(BaseModel):
    """One row where a latent fired, with the tokens around it."""

    model_config = ConfigDict(extra="forbid")

    row: int = Field(description="Row of the store.")
    text: int = Field(description="Corpus index of the row's text.")
    position: int = Field(description="Position of the row's token in its text's model input (0 = first token).")
    value: float = Field(description="The latent's activation at the row.")
    tokens: list[int] = Field(description="Token ids of the context, the row's own token at index ``centre``.")
    centre: int = Field(description="Index in ``tokens`` of the row's token.")
    values: list[float | None] = Field(
        description="The latent's activation at every context token: 0 where it did not fire, None where the "
        "store has no row for the token (padding, special tokens or the first positions capture drops)."
    )
    ablation_effect: list[float | None] | None = Field(
        default=None,
        description="Change of log p(next token) at every context token when the latent is ablated at the row "
        "(``--ablation-effects``); None where the next token is outside the text.",
    )


class Histogram(BaseModel):
    """Counts of the nonzero activations in equal-width bins from 0 to the maximum."""

    model_config = ConfigDict(extra="forbid")

    edges: list[float] = Field(description="Bin edges, [bins + 1], from 0 to the maximum activation.")
    counts: list[int] = Field(description="Nonzero activations per bin, [bins]; the last bin includes its top edge.")


class QuantileBand(BaseModel):
    """Contexts sampled from one band of the latent's nonzero activations, ranked by value."""

    model_config = ConfigDict(extra="forbid")

    lower_quantile: float = Field(description="The band starts at this quantile of the nonzero activations.")
    upper_quantile: float
    lower: float = Field(description="Smallest activation in the band.")
    upper: float = Field(description="Largest activation in the band.")
    count: int = Field(description="Nonzero activations in the band.")
    contexts: list[Context] = Field(description="Evenly spaced by rank within the band (deterministic).")


class Neighbour(BaseModel):
    """Another latent and how close it is."""

    model_config = ConfigDict(extra="forbid")

    latent: int
    score: float = Field(
        description="Co-firing: Jaccard index of the two firing sets; decoder: cosine of the decoder rows."
    )


class TokenScore(BaseModel):
    """One vocabulary entry of the logit lens."""

    model_config = ConfigDict(extra="forbid")

    token: int
    score: float = Field(description="The decoder row through the final norm and the unembedding, for this token.")


class LabelScore(BaseModel):
    """The latent as a detector of one class: it predicts the class wherever it fires."""

    model_config = ConfigDict(extra="forbid")

    label: int
    name: str
    precision: float = Field(description="Share of the latent's firing rows that have this label.")
    recall: float = Field(description="Share of this label's rows where the latent fires.")
    f1: float


class LatentDiagnosis(BaseModel):
    """What ``dictlab diagnose`` says about one latent (Dorrell, arXiv 2606.02385), on the diagnosed rows.

    Filled by :func:`dictlab.features.diagnosis.latent_diagnoses`; its module docstring defines the flags.
    """

    model_config = ConfigDict(extra="forbid")

    flags: list[str] = Field(
        default_factory=list,
        description="Short names of what was found: dead, nested-child, nested-parent, partly-nested-child, "
        "partly-nested-parent, dense, antipodal, split-pressure, violates-hull, violates-<check> (C1, C2, E1, "
        "bias-identity, E4-sum).",
    )
    nested_partner: int | None = Field(
        default=None,
        description="The other latent of its most nested hierarchy pair (nested pairs first, then the highest "
        "P(parent | child)).",
    )
    nested_role: str | None = Field(
        default=None,
        description="'child' (fires only inside the partner, or mostly for a partly nested pair) or 'parent'.",
    )
    absorption_ratio: float | None = Field(
        default=None,
        description="1 − P(parent | child) of that pair: share of child rows the parent left (0 when nested).",
    )
    dense: bool = Field(default=False, description="Active on more than half the rows.")
    antipodal_partner: int | None = Field(
        default=None, description="Latent whose decoder row is nearly its negative (cosine < −0.95; the lowest)."
    )
    split_pressure: float | None = Field(
        default=None, description="SP_k/(λ‖α_k‖₁), lower-bound estimate; computed for every live latent."
    )
    residual_share: float | None = Field(
        default=None,
        description="Σ(w_kᵀr_n)²/Σ‖r_n‖² over the latent's active rows: the share of the residual there along its "
        "own atom (its shrinkage, λ per row when C1 holds); the rest is other atoms' shrinkage and what the "
        "dictionary misses.",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Further numbers: count, density, per-atom condition values, every hierarchy and antipodal "
        "partner, pairs failing the hull test, mean ‖r_n‖/λ and the share of rows with ‖r_n‖ > λ.",
    )


class LatentFeatures(BaseModel):
    """Everything about one latent."""

    model_config = ConfigDict(extra="forbid")

    latent: int
    count: int = Field(description="Rows where the latent fired (nonzero activation).")
    density: float = Field(description="count / rows.")
    dead: bool = Field(description="Never fired on these rows.")
    mean: float = Field(description="Mean of the nonzero activations (0 for a dead latent).")
    max: float = Field(description="Largest activation (0 for a dead latent).")
    histogram: Histogram
    top: list[Context] = Field(description="The rows with the largest activations, largest first (exact).")
    quantiles: list[QuantileBand]
    top_token: int | None = Field(description="Most common current token among the top contexts.")
    top_token_share: float = Field(description="Share of the top contexts whose current token is top_token.")
    cofiring: list[Neighbour] = Field(description="Latents firing on the most similar rows (Jaccard), best first.")
    decoder: list[Neighbour] = Field(description="Latents with the most similar decoder rows (cosine), best first.")
    logits_top: list[TokenScore] = Field(default_factory=list, description="Logit lens, largest first.")
    logits_bottom: list[TokenScore] = Field(default_factory=list, description="Logit lens, smallest first.")
    labels: list[LabelScore] = Field(default_factory=list, description="Per-class detection, best F1 first.")
    best_label: str | None = None
    top_label_share: float | None = Field(
        default=None, description="Share of the top contexts that carry the most common label among them."
    )
    diagnosis: LatentDiagnosis | None = None


class FeatureSource(BaseModel):
    """Where the numbers come from."""

    model_config = ConfigDict(extra="forbid")

    run: str
    store: str
    module: str
    model: str = Field(description="The store's model (alias or folder).")
    rows: int = Field(description="Store rows the pass read.")
    first_row: int
    d_sae: int
    d_in: int
    activation: str
    window: int = Field(description="Tokens of context on each side.")
    label_names: list[str]


class FeatureReport(BaseModel):
    """The result of ``dictlab features``."""

    model_config = ConfigDict(extra="forbid")

    source: FeatureSource
    latents: list[LatentFeatures]
    vocabulary: dict[int, str] = Field(description="Decoded text of every token id the report mentions.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Wall time of each stage.")
    diagnosis: dict[str, Any] | None = Field(
        default=None, description="Headline numbers of the diagnosis (problem, counts) when --diagnose ran."
    )

    @property
    def n_live(self) -> int:
        return sum(not latent.dead for latent in self.latents)
