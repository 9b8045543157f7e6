"""The architecture of one sparse dictionary: kind, dimensions, activation and its hyperparameters."""

import itertools
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

DictionaryKind = Literal["sae", "transcoder", "crosscoder"]
ActivationName = Literal["relu", "jumprelu", "topk", "batchtopk", "matryoshka"]


class DictionaryConfig(BaseModel):
    """Architecture of a sparse dictionary x_q = σ(x_p·W_enc + b_enc), x̂_r = x_q·W_dec + b_dec.

    This is what ``cfg.json`` of a run folder stores; it fully determines the module's parameter shapes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DictionaryKind = Field(
        "sae",
        description="sae (target = input), transcoder (input -> other target), crosscoder (sources concatenated).",
    )
    d_in: int = Field(gt=0, description="Input width n_p (crosscoder: all sources concatenated).")
    d_out: int = Field(gt=0, description="Target width n_r (sae and crosscoder: equal to d_in).")
    d_sae: int = Field(gt=0, description="Number of latents n_q.")
    n_sources: int = Field(1, gt=0, description="Crosscoder: number of concatenated sources (1 otherwise).")
    activation: ActivationName = Field("topk", description="Sparsifying nonlinearity σ.")
    k: int | None = Field(
        None, gt=0, description="Active latents per sample for topk/batchtopk/matryoshka (batch mean)."
    )
    jumprelu_init_threshold: float = Field(
        0.01, gt=0, description="JumpReLU: initial threshold θ for every latent (SAELens default)."
    )
    jumprelu_bandwidth: float = Field(
        0.05, gt=0, description="JumpReLU: width ε of the rectangle kernel of the straight-through estimator."
    )
    batchtopk_threshold_momentum: float = Field(
        0.99,
        ge=0,
        lt=1,
        description="BatchTopK/Matryoshka: EMA momentum of the inference threshold (smallest kept activation).",
    )
    matryoshka_prefixes: tuple[float, ...] = Field(
        (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
        description="Matryoshka: nested latent-prefix sizes as fractions of d_sae (increasing, last = 1).",
    )
    use_bias: bool = Field(True, description="Learn b_enc and b_dec (False matches the bias-free theory).")
    apply_b_dec_to_input: bool = Field(
        True, description="Encode x - b_dec (pre-encoder bias); forced off for transcoders."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind in ("sae", "crosscoder") and self.d_in != self.d_out:
            raise ValueError(
                f"a {self.kind} reconstructs its input: d_in ({self.d_in}) must equal d_out ({self.d_out})"
            )
        if self.kind == "crosscoder":
            if self.n_sources < 2:
                raise ValueError("a crosscoder needs n_sources >= 2")
            if self.d_in % self.n_sources:
                raise ValueError(f"crosscoder d_in ({self.d_in}) is not divisible by n_sources ({self.n_sources})")
        elif self.n_sources != 1:
            raise ValueError(f"n_sources must be 1 for kind {self.kind!r}")
        if self.kind == "transcoder" and self.apply_b_dec_to_input:
            raise ValueError("apply_b_dec_to_input must be False for a transcoder (b_dec lives in target space)")
        if self.activation in ("topk", "batchtopk", "matryoshka"):
            if self.k is None:
                raise ValueError(f"activation {self.activation!r} needs k")
            if self.k > self.d_sae:
                raise ValueError(f"k ({self.k}) must not exceed d_sae ({self.d_sae})")
        if self.activation == "matryoshka":
            sizes = self.matryoshka_prefix_sizes
            if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
                raise ValueError(f"matryoshka_prefixes {self.matryoshka_prefixes} give non-increasing sizes {sizes}")
            if self.matryoshka_prefixes[-1] != 1.0:
                raise ValueError("the last matryoshka prefix must be 1.0 (the whole dictionary)")
        return self

    @property
    def matryoshka_prefix_sizes(self) -> list[int]:
        """Latent counts of the nested prefixes, e.g. [1000, 2000, 4000, 8000, 16000]."""
        return [max(1, round(f * self.d_sae)) for f in self.matryoshka_prefixes]

    @property
    def d_source(self) -> int:
        """Width of one crosscoder source block (d_out for non-crosscoders)."""
        return self.d_out // self.n_sources

    @property
    def has_sparsity_penalty(self) -> bool:
        """Whether the activation trains with a sparsity coefficient (ReLU's L1, JumpReLU's L0)."""
        return self.activation in ("relu", "jumprelu")

    @property
    def is_topk_family(self) -> bool:
        """Whether sparsity is set by k (TopK, BatchTopK, Matryoshka)."""
        return self.activation in ("topk", "batchtopk", "matryoshka")
