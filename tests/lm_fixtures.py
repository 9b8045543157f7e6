"""Small real transformers models for tests, built locally (no hub): a randomly initialised 2-block Llama with
the all-MiniLM-L6-v2 WordPiece tokenizer, saved as an ordinary transformers folder; a word corpus and the capture
config the capture and train-on-store tests share."""

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dictlab.jobs.capture import CaptureConfig

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "dogs",
    "ran",
    "over",
    "green",
    "hills",
    "and",
    "cold",
    "rivers",
    "in",
    "spring",
    "light",
]


def write_word_corpus(path: Path, n_texts: int = 1500, seed: int = 0) -> Path:
    """``n_texts`` random texts of 1–24 words of WORDS, one per line, written to ``path``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(1, 25))) for _ in range(n_texts)]
    path.write_text("\n".join(lines) + "\n")
    return path


def capture_config(model: Path, corpus: Path, out: Path, **kw: object) -> "CaptureConfig":
    """A small capture of both blocks of ``model`` over ``corpus`` (batches of 4, 300-row shards); ``kw`` overrides."""
    from dictlab.jobs.capture import CaptureConfig

    base = {
        "model": str(model),
        "module": ("layer:0", "layer:1"),
        "corpus": str(corpus),
        "out": out,
        "batch_size": 4,
        "shard_rows": 300,
        "progress": False,
    }
    return CaptureConfig.model_validate({**base, **kw})


def make_tiny_causal_lm(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random LlamaForCausalLM (+ tokenizer) to ``folder`` and return it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from dictlab.lm.loading import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
