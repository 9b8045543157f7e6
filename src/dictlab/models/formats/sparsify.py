"""EleutherAI sparsify folders: ``cfg.json`` (``SparseCoderConfig.to_dict()`` plus ``d_in``) + ``sae.safetensors``.

Layout and math from ``EleutherAI/sparsify`` ``sparsify/sparse_coder.py`` and ``sparsify/fused_encoder.py``
(main, 2025): the weights are ``encoder.weight [num_latents, d_in]``, ``encoder.bias [num_latents]``,
``W_dec [num_latents, d_in]``, ``b_dec [d_in]`` (and ``W_skip [d_in, d_in]`` with ``skip_connection``). Encoding
is ``top-k(ReLU(encoder(x − b_dec)))`` (no b_dec subtraction for transcoders), decoding ``codes·W_dec + b_dec``.
A hookpoint folder of a multi-layer run (e.g. ``layers.6``) is one such folder.
"""

from pathlib import Path

from dictlab.models.formats.common import (
    ForeignDictionary,
    ForeignFormatError,
    boolean,
    build,
    load_safetensors,
    plain_json,
    positive_int,
    read_config,
    take_tensors,
    text_or_none,
)

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"
CONFIG_KEYS = frozenset({"expansion_factor", "num_latents", "normalize_decoder", "multi_topk", "skip_connection"})
"""Keys of sparsify's ``SparseCoderConfig`` that neither dictlab nor SAELens configs have."""


def detect(folder: Path) -> bool:
    """Whether ``folder`` is (or, with ``cfg.json`` but no weights, claims to be) a sparsify folder."""
    if (folder / WEIGHTS_FILE).is_file():
        return True
    if not (folder / CONFIG_FILE).is_file():
        return False
    try:
        raw = read_config(folder / CONFIG_FILE, "")
    except ForeignFormatError:
        return False
    return "dictionary" not in raw and "architecture" not in raw and bool(CONFIG_KEYS & raw.keys())


def load(folder: Path) -> ForeignDictionary:
    """Rebuild a sparsify TopK SAE (``transcode: false``) as a dictlab ``sae`` with activation ``topk``, or a
    transcoder (``transcode: true``) as a dictlab ``transcoder`` (d_out = d_in, no pre-encoder bias).

    ``W_enc = encoder.weight.T``, ``b_enc = encoder.bias``, ``W_dec`` and ``b_dec`` as stored, in float32
    (sparsify often saves bfloat16). dictlab's TopK keeps the k largest pre-activations then applies ReLU; sparsify
    applies ReLU then keeps the k largest, which gives the same codes. Training-only options need no mapping:
    ``normalize_decoder`` (unit decoder rows during training), ``multi_topk`` (an extra 4k-latent loss term).
    Refused: ``activation: "groupmax"`` (one winner per block of latents, no dictlab equivalent),
    ``skip_connection`` / a ``W_skip`` tensor (x̂ gains x·W_skipᵀ, which dictlab's affine decoder cannot hold)
    and the early ``signed`` option.
    """
    cfg_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    raw = read_config(cfg_path, "not a sparsify folder")
    if not weights_path.is_file():
        raise ForeignFormatError(f"{weights_path} is missing: {cfg_path} describes a sparsify SAE without its weights")
    activation = raw.get("activation", "topk")
    if activation != "topk":
        raise ForeignFormatError(f"{cfg_path}: unsupported activation {activation!r}; dictlab reads sparsify 'topk'")
    for option in ("skip_connection", "signed"):
        if boolean(raw, option, cfg_path, False):
            raise ForeignFormatError(
                f"{cfg_path}: unsupported option {option!r}: true; dictlab's dictionary has no "
                + ("linear skip connection x·W_skipᵀ" if option == "skip_connection" else "signed top-k")
            )
    transcode = boolean(raw, "transcode", cfg_path, False)
    d_in = positive_int(raw, "d_in", cfg_path)
    k = positive_int(raw, "k", cfg_path)
    num_latents = raw.get("num_latents", 0)
    if num_latents == 0 and not isinstance(num_latents, bool):
        d_sae = d_in * positive_int(raw, "expansion_factor", cfg_path)
    else:
        d_sae = positive_int(raw, "num_latents", cfg_path)
    state = load_safetensors(weights_path)
    if "W_skip" in state:
        raise ForeignFormatError(f"{weights_path} holds 'W_skip' (a skip connection), which dictlab cannot represent")
    tensors = take_tensors(
        state,
        {"encoder.weight": (d_sae, d_in), "encoder.bias": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)},
        weights_path,
    )
    model = build(
        {
            "kind": "transcoder" if transcode else "sae",
            "d_in": d_in,
            "d_out": d_in,
            "d_sae": d_sae,
            "activation": "topk",
            "k": k,
            "apply_b_dec_to_input": not transcode,
        },
        {
            "W_enc": tensors["encoder.weight"].T.contiguous(),
            "b_enc": tensors["encoder.bias"],
            "W_dec": tensors["W_dec"],
            "b_dec": tensors["b_dec"],
        },
        cfg_path,
    )
    metadata = {"source_format": "sparsify", "source_config": plain_json(raw), "hookpoint": folder.name}
    run_config = folder.parent / "config.json"  # the run's TrainConfig, next to the hookpoint folders
    if run_config.is_file():
        try:
            name = text_or_none(read_config(run_config, "").get("model"))
        except ForeignFormatError:
            name = None
        if name is not None:
            metadata["model"] = name
    return ForeignDictionary(model, metadata, (CONFIG_FILE, WEIGHTS_FILE))
