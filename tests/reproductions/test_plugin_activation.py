"""A plug-in activation, registered here and nowhere else, trains through the bench like a built-in one."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
import torch
from torch import Tensor

from dictlab.models import DictionaryConfig, SparseDictionary, activation_names, load_dictionary
from dictlab.models.activations import Activation, register_activation, scatter_top, unregister_activation
from dictlab.reproductions.bench import BenchRequest, get_preset, run_bench_preset
from dictlab.reproductions.bench.methods import bench_methods


class ThresholdReLU(Activation):
    """pre·1[pre > 0.1] trained with a plain L1 penalty: a toy activation with a sparsity coefficient."""

    name = "toy-threshold"
    has_sparsity_penalty = True

    @classmethod
    def from_config(cls, cfg: DictionaryConfig) -> Self:
        return cls()

    def forward(self, pre: Tensor) -> Tensor:
        return pre * (pre > 0.1).to(pre.dtype)

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        return codes.abs().sum(dim=-1).mean()


class DenseTopK(Activation):
    """Each sample's k largest pre-activations, computed densely: a toy that uses k but has no sparse path."""

    name = "toy-dense-topk"
    uses_k = True

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    @classmethod
    def from_config(cls, cfg: DictionaryConfig) -> Self:
        assert cfg.k is not None
        return cls(cfg.k)

    def forward(self, pre: Tensor) -> Tensor:
        values, indices = pre.topk(self.k, dim=-1)
        return scatter_top(pre, values, indices)


@pytest.fixture
def toys() -> Iterator[None]:
    register_activation(ThresholdReLU)
    register_activation(DenseTopK)
    yield
    unregister_activation(ThresholdReLU.name)
    unregister_activation(DenseTopK.name)


def test_registration_derives_every_name_list(toys: None) -> None:
    assert {"toy-threshold", "toy-dense-topk"} <= set(activation_names())
    assert "toy-dense-topk" in activation_names(uses_k=True) and "toy-dense-topk" not in activation_names(
        has_sparse_path=True
    )
    assert "toy-threshold" in activation_names(has_sparsity_penalty=True)
    assert {"toy-threshold", "toy-dense-topk"} <= set(bench_methods())
    cfg = DictionaryConfig(d_in=6, d_out=6, d_sae=12, activation="toy-dense-topk", k=3)
    assert cfg.uses_k and not cfg.has_sparse_path and not cfg.has_sparsity_penalty
    with pytest.raises(ValueError, match="needs k"):
        DictionaryConfig(d_in=6, d_out=6, d_sae=12, activation="toy-dense-topk")
    codes = SparseDictionary(cfg).encode(torch.randn(5, 6))
    assert ((codes != 0).sum(dim=-1) <= 3).all()


def test_registry_refuses_a_second_class_under_one_name(toys: None) -> None:
    class Impostor(ThresholdReLU):
        name = "toy-threshold"

    with pytest.raises(ValueError, match="already registered"):
        register_activation(Impostor)

    class Nameless(Activation):
        pass

    with pytest.raises(ValueError, match="must set a non-empty str 'name'"):
        register_activation(Nameless)


def test_unknown_activation_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'toy-threshold'; registered: relu, jumprelu"):
        DictionaryConfig(d_in=6, d_out=6, d_sae=12, activation="toy-threshold")


def test_toy_activations_train_through_the_bench(toys: None, tmp_path: Path) -> None:
    smoke = get_preset("smoke")
    preset = smoke.model_copy(update={"sparsity_coefficients": {**smoke.sparsity_coefficients, "toy-threshold": 0.3}})
    request = BenchRequest(out=tmp_path, methods=("toy-threshold", "toy-dense-topk"), sweep=False, progress=False)
    result = run_bench_preset(preset, request, echo=lambda _: None)

    by = {(r.method, r.anchored): r for r in result.records}
    assert set(by) == {(m, a) for m in ("toy-threshold", "toy-dense-topk") for a in (False, True)}
    threshold, topk = by[("toy-threshold", False)], by[("toy-dense-topk", False)]
    assert threshold.activation == "toy-threshold" and threshold.k is None and threshold.sparsity_coefficient == 0.3
    assert topk.k == preset.k and topk.sparsity_coefficient == 0.0 and 0 < topk.l0 <= preset.k
    assert by[("toy-dense-topk", True)].n_anchors == preset.n_anchors
    assert all(r.steps > 0 and r.trajectory.step[-1] == r.steps for r in result.records)

    saved = json.loads((tmp_path / "results.json").read_text())
    assert [(r["method"], r["anchored"]) for r in saved] == [(r.method, r.anchored) for r in result.records]
    model = load_dictionary(tmp_path / "runs" / "toy-dense-topk")
    assert isinstance(model.activation, DenseTopK) and model.cfg.k == preset.k
    results_md = (tmp_path / "results.md").read_text()
    assert "| toy-threshold |" in results_md and "| toy-dense-topk |" in results_md


def test_penalised_plugin_without_a_preset_coefficient_is_refused(toys: None, tmp_path: Path) -> None:
    request = BenchRequest(out=tmp_path, methods=("toy-threshold",), sweep=False, progress=False)
    with pytest.raises(ValueError, match="sets no sparsity coefficient for activation 'toy-threshold'"):
        run_bench_preset(get_preset("smoke"), request, echo=lambda _: None)
    assert not any(tmp_path.iterdir()), "nothing is written before the request is known to be valid"
