"""Activation files: .npy, .safetensors and .pt on disk, key selection, max_rows, 3-D flattening and every error."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dictlab.data import ActivationFileError, load_activations


def _matrix(n: int = 20, d: int = 6) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


def _write(tmp_path: Path, fmt: str, data: torch.Tensor | dict[str, torch.Tensor], name: str = "acts") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "npy":
        assert isinstance(data, torch.Tensor)
        np.save(path, data.numpy())
    elif fmt == "safetensors":
        save_file(data if isinstance(data, dict) else {"acts": data}, str(path))
    else:
        torch.save(data, path)
    return path


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_each_format_round_trips(tmp_path: Path, fmt: str) -> None:
    x = _matrix()
    loaded = load_activations(_write(tmp_path, fmt, x))
    assert loaded.dtype == torch.float32 and loaded.is_contiguous()
    assert torch.equal(loaded, x)
    assert torch.equal(load_activations(_write(tmp_path, fmt, x, "again"), max_rows=7), x[:7])
    assert torch.equal(load_activations(tmp_path / f"acts.{fmt}", max_rows=1000), x)


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_three_dims_are_flattened(tmp_path: Path, fmt: str) -> None:
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(1))
    path = _write(tmp_path, fmt, x)
    assert torch.equal(load_activations(path), x.reshape(20, 3))
    assert torch.equal(load_activations(path, max_rows=7), x.reshape(20, 3)[:7])


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_key_selection(tmp_path: Path, fmt: str) -> None:
    a, b = _matrix(5, 3), _matrix(8, 4)
    path = _write(tmp_path, fmt, {"layer_0": a, "layer_1": b})
    assert torch.equal(load_activations(path, key="layer_1"), b)
    with pytest.raises(ActivationFileError, match=r"acts\.\w+ holds several tensors \['layer_0', 'layer_1'\]"):
        load_activations(path)
    with pytest.raises(ActivationFileError, match="has no tensor 'layer_9'"):
        load_activations(path, key="layer_9")


def test_pt_dict_with_one_tensor_and_metadata(tmp_path: Path) -> None:
    x = _matrix()
    path = tmp_path / "acts.pt"
    torch.save({"acts": x, "layer": 3, "model": "gpt2"}, path)
    assert torch.equal(load_activations(path), x)
    with pytest.raises(ActivationFileError, match="single tensor"):
        load_activations(_write(tmp_path, "pt", x, "plain"), key="acts")
    torch.save([x], tmp_path / "list.pt")
    with pytest.raises(ActivationFileError, match="holds a list"):
        load_activations(tmp_path / "list.pt")


def test_dtype_conversion(tmp_path: Path) -> None:
    ints = torch.arange(12).reshape(4, 3)
    np.save(tmp_path / "ints.npy", ints.numpy().astype(np.uint32))
    assert torch.equal(load_activations(tmp_path / "ints.npy"), ints.float())
    save_file({"acts": _matrix().to(torch.bfloat16)}, str(tmp_path / "bf16.safetensors"))
    assert load_activations(tmp_path / "bf16.safetensors").dtype == torch.float32
    half = load_activations(_write(tmp_path, "pt", _matrix()), dtype=torch.float16)
    assert half.dtype == torch.float16
    with pytest.raises(ValueError, match="floating-point"):
        load_activations(tmp_path / "acts.pt", dtype=torch.int64)


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ActivationFileError, match=r"nope\.npy does not exist"):
        load_activations(tmp_path / "nope.npy")
    (tmp_path / "acts.csv").write_text("1,2\n3,4\n")
    with pytest.raises(ActivationFileError, match=r"acts\.csv: unknown extension '\.csv'"):
        load_activations(tmp_path / "acts.csv")
    with pytest.raises(ActivationFileError, match="not a file"):
        load_activations(tmp_path)


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_corrupt_files(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path, fmt, _matrix(200, 8))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(ActivationFileError, match=rf"acts\.{fmt} is corrupt or unreadable"):
        load_activations(path)
    path.write_bytes(b"this is not an array file at all")
    with pytest.raises(ActivationFileError, match=rf"acts\.{fmt} is corrupt or unreadable"):
        load_activations(path)


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5)])
def test_wrong_rank(tmp_path: Path, fmt: str, shape: tuple[int, ...]) -> None:
    path = _write(tmp_path, fmt, torch.zeros(shape))
    with pytest.raises(ActivationFileError, match=r"acts\.\w+ holds shape .*expected \[N, D\] or \[batch, seq, D\]"):
        load_activations(path)


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_empty(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(ActivationFileError, match=r"acts\.\w+ holds no activations: shape \[0, 6\]"):
        load_activations(_write(tmp_path, fmt, torch.zeros(0, 6)))


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "pt"])
def test_non_finite_rows_are_counted(tmp_path: Path, fmt: str) -> None:
    x = _matrix()
    x[3, 1] = float("nan")
    x[3, 2] = float("inf")
    x[11, 0] = float("-inf")
    with pytest.raises(ActivationFileError, match=r"acts\.\w+: 2 of 20 rows contain NaN or Inf"):
        load_activations(_write(tmp_path, fmt, x))
    assert torch.equal(load_activations(tmp_path / f"acts.{fmt}", max_rows=3), x[:3])


def test_overflow_on_conversion_counts_as_non_finite(tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.full((3, 2), 1e300))
    with pytest.raises(ActivationFileError, match="3 of 3 rows contain NaN or Inf"):
        load_activations(tmp_path / "big.npy")


def test_unconvertible_dtypes(tmp_path: Path) -> None:
    np.save(tmp_path / "complex.npy", np.ones((3, 2), dtype=np.complex64))
    with pytest.raises(ActivationFileError, match=r"complex\.npy: dtype complex64 cannot be converted"):
        load_activations(tmp_path / "complex.npy")
    np.save(tmp_path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ActivationFileError, match=r"strings\.npy: dtype <U1 cannot be converted"):
        load_activations(tmp_path / "strings.npy")
    np.save(tmp_path / "objects.npy", np.array([[{}, {}]], dtype=object), allow_pickle=True)
    with pytest.raises(ActivationFileError, match=r"objects\.npy is corrupt or unreadable"):
        load_activations(tmp_path / "objects.npy")
    torch.save(torch.ones(3, 2, dtype=torch.complex64), tmp_path / "complex.pt")
    with pytest.raises(ActivationFileError, match=r"complex\.pt: complex dtype torch\.complex64 cannot be converted"):
        load_activations(tmp_path / "complex.pt")


def test_bad_arguments(tmp_path: Path) -> None:
    path = _write(tmp_path, "npy", _matrix())
    with pytest.raises(ValueError, match="max_rows"):
        load_activations(path, max_rows=0)
    with pytest.raises(ActivationFileError, match="single array"):
        load_activations(path, key="acts")
