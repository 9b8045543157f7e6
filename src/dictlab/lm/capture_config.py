"""Settings of ``dictlab capture`` (importable without transformers)."""

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class CaptureConfig(BaseModel):
    """What to capture, from which model and text, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = Field(description="Model folder (transformers format) or offline alias: minilm, smollm2.")
    module: tuple[str, ...] = Field(
        description="Modules to capture, comma-separated: names (model.layers.15), wildcards (model.layers.*.mlp) "
        "or layer:N for the output of block N."
    )
    corpus: str = Field(
        description="Text source: wordnet-nouns, wordnet-verbs, fortunes, python-docs, or a .txt/.jsonl file."
    )
    out: Path = Field(description="Store folder (created; re-running the same command resumes it).")
    max_tokens: int | None = Field(
        default=None, gt=0, description="Stop after the batch that reaches this many kept tokens."
    )
    max_per_class: int | None = Field(
        default=None, gt=0, description="Balanced subsample: at most this many texts per label (seeded)."
    )
    max_texts: int | None = Field(default=None, gt=0, description="Use at most this many texts of the corpus.")
    max_length: int = Field(default=128, gt=1, description="Truncate texts to this many tokens.")
    batch_size: int = Field(default=16, gt=0, description="Texts per forward pass.")
    bucket_batches: int = Field(
        default=32, gt=0, description="Sort texts by length within windows of this many batches."
    )
    skip_first: int = Field(
        default=1, ge=0, description="Drop the first N real positions of each text (attention sink)."
    )
    drop_special: bool = Field(default=True, description="Drop special-token positions (BOS, CLS, SEP, EOS).")
    pool: Literal["none", "mean"] = Field(
        default="none", description="none: one row per token; mean: one row per text."
    )
    dtype: Literal["float32", "float16"] = Field(default="float32", description="Storage dtype of the activations.")
    model_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        default="float32", description="Dtype to run the model."
    )
    shard_rows: int = Field(default=65_536, gt=0, description="Commit a shard once this many rows are buffered.")
    seed: int = Field(default=0, description="Seed of the text order.")
    device: str = Field(default="cpu", description="Device to run the model on (cuda when available).")
    progress: bool = Field(default=True, description="Show a progress bar with tokens/s.")
    overwrite: bool = Field(
        default=False, description="Replace the store in --out if it was captured with other settings."
    )

    @model_validator(mode="after")
    def _keeps_positions(self) -> "CaptureConfig":
        if self.skip_first >= self.max_length:
            raise ValueError(
                f"--skip-first {self.skip_first} drops every position of texts truncated to --max-length "
                f"{self.max_length}: nothing would be captured"
            )
        return self

    def settings(self) -> dict[str, Any]:
        """The settings that determine the store's content (a resumed capture must repeat them)."""
        return self.model_dump(mode="json", exclude={"out", "device", "progress", "model", "module", "overwrite"})
