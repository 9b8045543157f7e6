"""Bench methods and their runs: which dictionary each method trains, with which recipe, under a preset.

A method is an SAE named after its activation (every registered activation is one), or ``transcoder`` /
``crosscoder`` (TopK dictionaries on the transcoder and crosscoder views; the paper does not state their
activation).
"""

from dataclasses import dataclass

import torch

from dictlab.data import DataView
from dictlab.models import DictionaryConfig, DictionaryKind, activation_names
from dictlab.reproductions.bench.presets import BenchPreset
from dictlab.training import Anchors, RecipeConfig

CODER_METHODS: dict[str, tuple[DictionaryKind, str]] = {
    "transcoder": ("transcoder", "topk"),
    "crosscoder": ("crosscoder", "topk"),
}


@dataclass(frozen=True)
class Method:
    """What a method trains: a dictionary kind (also the data view it reads) and an activation."""

    name: str
    kind: DictionaryKind
    activation: str


def bench_methods() -> dict[str, Method]:
    """Every method the bench can run: one SAE per registered activation, then the transcoder and crosscoder."""
    methods = {name: Method(name, "sae", name) for name in activation_names()}
    methods.update({name: Method(name, kind, activation) for name, (kind, activation) in CODER_METHODS.items()})
    return methods


def get_method(name: str) -> Method:
    """The method called ``name``; ValueError listing the valid ones otherwise."""
    methods = bench_methods()
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(methods)}")
    return methods[name]


@dataclass(frozen=True)
class RunSpec:
    """One bench run: a method, with or without anchors, and its architecture and recipe.

    ``name`` is its folder under ``runs/``: ``topk``, ``topk-fa``, or ``relu@0.3`` for a sweep run.
    """

    name: str
    method: str
    anchored: bool
    dictionary: DictionaryConfig
    recipe: RecipeConfig


def table1_coefficient(preset: BenchPreset, activation: str) -> float:
    """The preset's sparsity coefficient of ``activation`` (0 for an activation without a penalty)."""
    if activation not in activation_names(has_sparsity_penalty=True):
        return 0.0
    if activation not in preset.sparsity_coefficients:
        raise ValueError(
            f"preset {preset.name!r} sets no sparsity coefficient for activation {activation!r} "
            f"(BenchPreset.sparsity_coefficients has {', '.join(preset.sparsity_coefficients) or 'none'})"
        )
    return preset.sparsity_coefficients[activation]


def run_spec(
    preset: BenchPreset, method: str, anchored: bool, view: DataView, coefficient: float | None = None
) -> RunSpec:
    """Architecture and recipe of ``method`` under ``preset``; ``coefficient`` overrides its sparsity coefficient
    (a sweep run, named ``method@coefficient``)."""
    spec = get_method(method)
    dictionary = DictionaryConfig(
        kind=spec.kind,
        d_in=view.d_in,
        d_out=view.d_out,
        d_sae=preset.d_sae,
        n_sources=preset.data.n_sources if spec.kind == "crosscoder" else 1,
        activation=spec.activation,
        k=preset.k if spec.activation in activation_names(uses_k=True) else None,
        jumprelu_init_threshold=preset.jumprelu_init_threshold,
        jumprelu_bandwidth=preset.jumprelu_bandwidth,
        matryoshka_prefixes=preset.matryoshka_prefixes,
        apply_b_dec_to_input=spec.kind != "transcoder",
    )
    if coefficient is None:
        name = f"{method}-fa" if anchored else method
        coefficient = table1_coefficient(preset, spec.activation)
    elif not dictionary.has_sparsity_penalty:
        raise ValueError(f"method {method!r} has no sparsity coefficient to sweep")
    else:
        name = f"{method}@{coefficient:g}" + ("-fa" if anchored else "")
    recipe = RecipeConfig(
        lr=preset.lr,
        sparsity_coefficient=coefficient,
        aux_coefficient=preset.aux_coefficient,
        dead_window_samples=preset.data.n_train,
        anchor_coefficient=preset.anchor_coefficient if anchored else 0.0,
        anchor_terms=preset.anchor_terms,
        path=preset.training_path,
    )
    return RunSpec(name, method, anchored, dictionary, recipe)


def sweep_coefficients(preset: BenchPreset, method: str) -> tuple[float, ...]:
    """The preset's sweep coefficients of ``method`` other than its Table-1 coefficient (() for other methods)."""
    activation = get_method(method).activation
    main = table1_coefficient(preset, activation)
    return tuple(sorted(set(preset.sparsity_sweeps.get(activation, ())) - {main}))


def choose_anchor_features(n_features: int, n_anchors: int, seed: int) -> torch.Tensor:
    """The ground-truth features used as anchors: a seeded random subset, sorted. [n_anchors] int64."""
    if n_anchors > n_features:
        raise ValueError(f"n_anchors ({n_anchors}) exceeds the number of features ({n_features})")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_features, generator=generator)[:n_anchors].sort().values


def anchors_for(view: DataView, feature_ids: torch.Tensor) -> Anchors:
    """Anchors on the ground-truth features ``feature_ids`` of ``view`` (input and output directions)."""
    return Anchors(view.truth.features_in[feature_ids], view.truth.features_out[feature_ids], feature_ids)
