"""Small real transformers models for tests, built locally (no hub): a randomly initialised 2-block Llama with
the all-MiniLM-L6-v2 WordPiece tokenizer, saved as an ordinary transformers folder."""

from pathlib import Path


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
