"""``dictlab eval-in-model``: splice a trained SAE into its language model and report CE/KL ("CE loss recovered")."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dictlab.diagnostics.sources import DICTIONARY_HELP, load_source
from dictlab.files.atomic import atomic_write_text


class InModelRequest(BaseModel):
    """Which dictionary, model, module and texts."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    folder: Path = Field(description=DICTIONARY_HELP)
    model: str | None = Field(default=None, description="Causal LM folder or alias (default: the store's model).")
    module: str | None = Field(default=None, description="Module to splice at (default: the module trained on).")
    corpus: str = Field(default="python-docs", description="Texts to score: a corpus name or a .txt/.jsonl file.")
    max_texts: int = Field(default=64, gt=0, description="Texts scored (seeded random subset).")
    batch_size: int = Field(default=8, gt=0, description="Texts per forward pass.")
    max_length: int = Field(default=128, gt=1, description="Truncate texts to this many tokens.")
    skip_first: int = Field(default=1, ge=0, description="Leave the first N real positions unspliced (as in capture).")
    seed: int = Field(default=0, description="Seed of the text subset.")
    out: Path | None = Field(default=None, description="Write in_model.json here (default: FOLDER/in_model.json).")
    progress: bool = Field(default=True, description="Show a progress bar.")


def run_in_model_eval(request: InModelRequest, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate and write ``in_model.json``; returns the report as a dict."""
    from dictlab.data.corpora import load_corpus
    from dictlab.lm.in_model_eval import evaluate_in_model
    from dictlab.lm.loading import load_language_model

    out = request.out or request.folder / "in_model.json"
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the path of the JSON file to write")
    source = load_source(request.folder)
    meta = source.metadata
    model_spec = request.model or meta.get("model") or meta.get("model_name")
    module = request.module or meta.get("module") or meta.get("hook_name")
    if not isinstance(model_spec, str | None) or not isinstance(module, str | None):
        raise ValueError(f"{request.folder}: the recorded model and module must be strings")
    if not model_spec or not module:
        raise ValueError(
            f"{request.folder} does not say which model and module it belongs to: pass --model and --module"
        )
    corpus = load_corpus(request.corpus)
    texts = corpus.subset(sorted(_subset(len(corpus), request.max_texts, request.seed))).texts
    lm = load_language_model(model_spec)
    report = evaluate_in_model(
        lm,
        module,
        source.model.eval(),
        texts,
        request.batch_size,
        request.max_length,
        request.skip_first,
        progress=request.progress,
    )
    record = {"folder": str(request.folder), "model": model_spec, "corpus": request.corpus, **report.to_dict()}
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    echo(
        f"{module}: CE clean {report.ce_clean:.4f}, spliced {report.ce_spliced:.4f} (+{report.ce_increase:.4f}), "
        f"zero-ablated {report.ce_zero_ablation:.4f}; KL {report.kl:.4f}; CE loss recovered "
        f"{report.ce_loss_recovered:.1%}; FVU {report.fvu:.3f}, L0 {report.l0:.1f} over {report.tokens} tokens -> {out}"
    )
    return record


def _subset(n: int, size: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).permutation(n)[:size].tolist()
