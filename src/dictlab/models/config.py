"""The architecture of one sparse dictionary: kind, dimensions, activation and its hyperparameters."""

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dictlab.models.activations.registry import RegisteredActivation, activation_class

if TYPE_CHECKING:
    from dictlab.models.activations.base import Activation

DictionaryKind = Literal["sae", "transcoder", "crosscoder"]


class DictionaryConfig(BaseModel):
    """Architecture of a sparse dictionary x_q = σ(x_p·W_enc + b_enc), x̂_r = x_q·W_dec + b_dec.

    This is what ``cfg.json`` of a run folder stores; it fully determines the module's parameter shapes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: DictionaryKind = Field(
        default="sae",
        description="sae (target = input), transcoder (input -> other target), crosscoder (sources concatenated).",
    )
    d_in: int = Field(gt=0, description="Input width n_p (crosscoder: all sources concatenated).")
    d_out: int = Field(gt=0, description="Target width n_r (sae and crosscoder: equal to d_in).")
    d_sae: int = Field(gt=0, description="Number of latents n_q.")
    n_sources: int = Field(default=1, gt=0, description="Crosscoder: number of concatenated sources (1 otherwise).")
    activation: RegisteredActivation = Field(
        default="topk", description="Sparsifying nonlinearity σ: a registered activation (relu, jumprelu, topk, ...)."
    )
    k: int | None = Field(
        default=None,
        gt=0,
        description="Active latents per sample (batch mean) for activations that use k (the TopK family).",
    )
    jumprelu_init_threshold: float = Field(
        default=0.01, gt=0, description="JumpReLU: initial threshold θ for every latent (SAELens default)."
    )
    jumprelu_bandwidth: float = Field(
        default=0.05, gt=0, description="JumpReLU: width ε of the rectangle kernel of the straight-through estimator."
    )
    batchtopk_threshold_momentum: float = Field(
        default=0.99,
        ge=0,
        lt=1,
        description="BatchTopK/Matryoshka: EMA momentum of the inference threshold (smallest kept activation).",
    )
    matryoshka_prefixes: tuple[float, ...] = Field(
        default=(1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
        description="Matryoshka: nested latent-prefix sizes as fractions of d_sae (increasing, last = 1).",
    )
    use_bias: bool = Field(default=True, description="Learn b_enc and b_dec (False matches the bias-free theory).")
    apply_b_dec_to_input: bool = Field(
        default=True, description="Encode x - b_dec (pre-encoder bias); forced off for transcoders."
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
        if self.uses_k:
            if self.k is None:
                raise ValueError(f"activation {self.activation!r} needs k")
            if self.k > self.d_sae:
                raise ValueError(f"k ({self.k}) must not exceed d_sae ({self.d_sae})")
        self.activation_class.check_config(self)
        return self

    @property
    def matryoshka_prefix_sizes(self) -> list[int]:
        """Latent counts of the nested prefixes, e.g. [1000, 2000, 4000, 8000, 16000]."""
        return [max(1, round(f * self.d_sae)) for f in self.matryoshka_prefixes]

    @property
    def n_parameters(self) -> int:
        """Parameters and buffers of the module: W_enc, W_dec, both biases and one value per latent for thresholds."""
        return (self.d_in + self.d_out + 2) * self.d_sae + self.d_out

    @property
    def d_source(self) -> int:
        """Width of one crosscoder source block (d_out for non-crosscoders)."""
        return self.d_out // self.n_sources

    @property
    def activation_class(self) -> "type[Activation]":
        """The registered class of ``activation``."""
        return activation_class(self.activation)

    @property
    def has_sparsity_penalty(self) -> bool:
        """Whether the activation trains with a sparsity coefficient (ReLU's L1, JumpReLU's L0)."""
        return self.activation_class.has_sparsity_penalty

    @property
    def uses_k(self) -> bool:
        """Whether sparsity is set by k (the TopK family)."""
        return self.activation_class.uses_k

    @property
    def has_sparse_path(self) -> bool:
        """Whether the activation selects entries structurally, so the sparse training path and AuxK apply."""
        return self.activation_class.has_sparse_path
