"""SAEBench's output layout: one JSON file per evaluation and SAE, readable by SAEBench's own graphing code.

Follows ``adamkarvonen/SAEBench`` 0.6.0 (``sae_bench/evals/base_eval_output.py`` and
``sae_bench_utils/general_utils.py:get_results_filepath``): the file is
``<folder>/<eval_type_id>/<release>_<sae_id>_eval_results.json`` (``/`` in the name becomes ``_``) and holds
``eval_type_id``, ``eval_config``, ``eval_id`` (a UUID), ``datetime_epoch_millis``, ``eval_result_metrics``
(category → flat metrics), ``eval_result_details``, ``sae_bench_commit_hash``, ``sae_lens_id``,
``sae_lens_release_id``, ``sae_lens_version``, ``sae_cfg_dict`` (the SAE's SAELens config) and
``eval_result_unstructured``.

Where dictlab differs: the numbers are computed by dictlab, not by SAEBench, so ``sae_bench_commit_hash`` reads
``"dictlab <version>"`` and ``sae_lens_version`` is null (no SAELens code ran); ``sae_lens_id`` is the SAE's name
and ``sae_lens_release_id`` the release name given to ``dictlab evaluate``. A metric or detail that is not
computable (0/0, e.g. a dead latent's ``consistent_activation_heuristic``) is written as ``NaN``, as SAEBench
writes it (its schemas require a number there); dictlab's own JSON writes null instead.
"""

import json
import math
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from dictlab import __version__
from dictlab.files.atomic import atomic_write_text

SAEBENCH_VERSION = "0.6.0"
"""The SAEBench release whose output layout this module writes."""


class SAEBenchResult(Protocol):
    """What an evaluation result provides for SAEBench's layout."""

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        """``eval_result_metrics``: SAEBench's categories of that eval, each a flat dict of metrics."""
        ...

    def saebench_details(self) -> list[dict[str, Any]]:
        """``eval_result_details``: SAEBench's per-item details of that eval ([] if none)."""
        ...


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def saebench_file(folder: str | Path, eval_type_id: str, release: str, sae_id: str) -> Path:
    """``<folder>/<eval_type_id>/<release>_<sae_id>_eval_results.json``, as SAEBench names it."""
    name = f"{release}_{sae_id}_eval_results.json".replace("/", "_")
    return Path(folder) / eval_type_id / name


def saebench_record(
    eval_type_id: str,
    eval_config: dict[str, Any],
    result: SAEBenchResult,
    sae_cfg: dict[str, Any],
    release: str,
    sae_id: str,
    unstructured: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of one SAEBench result file (see the module docstring for the fields), with non-finite
    floats as None (strict JSON; :func:`write_saebench` writes SAEBench's NaN where its schemas need a number)."""
    return _finite(
        {
            "eval_type_id": eval_type_id,
            "eval_config": eval_config,
            "eval_id": str(uuid.uuid4()),
            "datetime_epoch_millis": int(time.time() * 1000),
            "eval_result_metrics": result.saebench_metrics(),
            "eval_result_details": result.saebench_details(),
            "sae_bench_commit_hash": f"dictlab {__version__}",
            "sae_lens_id": sae_id,
            "sae_lens_release_id": release,
            "sae_lens_version": None,
            "sae_cfg_dict": sae_cfg,
            "eval_result_unstructured": dict(unstructured or {}),
        }
    )


def write_saebench(folder: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` (from :func:`saebench_record`) to its SAEBench path under ``folder``; returns the path."""
    path = saebench_file(folder, record["eval_type_id"], record["sae_lens_release_id"], record["sae_lens_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(_nan_for_none(record), indent=2) + "\n")
    return path


def _nan_for_none(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with None among its metrics and per-item details as NaN (SAEBench's schemas type them as
    numbers, and SAEBench itself writes NaN for a 0/0)."""

    def nan(value: Any) -> Any:
        if value is None:
            return math.nan
        if isinstance(value, dict):
            return {k: nan(v) for k, v in value.items()}
        return value

    details = [nan(item) for item in record.get("eval_result_details", [])]
    return record | {"eval_result_metrics": nan(record["eval_result_metrics"]), "eval_result_details": details}
