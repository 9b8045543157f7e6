"""An offline browser of a :class:`~dictlab.features.report.FeatureReport`: a folder of static pages that opens
from ``file://`` with no server and no network.

Folder layout::

    index.html              every latent in one sortable, filterable, paged table (state in the URL hash)
    latent.html             one latent, chosen by the hash: latent.html#<id>
    app.js, style.css       copied from dictlab/report/browser_assets/
    data/meta.js            dictlabData.meta({...}): source, counts, chunk size, [first, last] latent id per chunk
    data/index.js           dictlabData.index({...}): the index's scalar columns (one array per column, a row per
                            latent in id order), flag and label names, the top tokens' table
    data/latents-NNNNN.js   dictlabData.chunk(N, {...}): everything about chunk N (``chunk`` consecutive latents
                            in id order) and the table of every token it mentions

Browsers refuse fetch/XHR on ``file://``, so the data are JavaScript files that the pages load by adding
``<script>`` tags. Each file's token table (``{ids, text}``, most frequent first) is what its token references
index into. A context is the array ``[row, text, position, value, tokens, centre, values, ablation]``
(``ablation`` only where present). Floats keep 4 significant digits, per-token activations and ablation effects 3,
with their zeros written as array holes.
"""

import html
import json
import math
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

from dictlab.features.report import Context, FeatureReport, Histogram, LatentDiagnosis, LatentFeatures

INDEX_HTML = "index.html"
LATENT_HTML = "latent.html"
DATA_DIR = "data"
ASSETS = ("app.js", "style.css")


def chunk_filename(k: int) -> str:
    """Name of chunk ``k``'s data file inside ``data/``."""
    return f"latents-{k:05d}.js"


def _round(x: float | None, digits: int = 4) -> float | int | None:
    """``x`` to ``digits`` significant digits (an int when integral); None, NaN and ±inf unchanged."""
    if x is None or not math.isfinite(x):
        return x
    r = float(f"{x:.{digits}g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def _num(x: float | None, digits: int = 3) -> str:
    """``x`` as a JavaScript number literal with ``digits`` significant digits ('null' for None)."""
    if x is None:
        return "null"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return f"{x:.{digits}g}"


_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _values(values: Sequence[float | None]) -> str:
    """Per-token numbers as a JavaScript array literal, 3 significant digits, zeros left out as holes
    (``[,1.5,,0]``: a hole reads as undefined; a last zero stays written, as a trailing comma ends the array)."""
    items = ["null" if v is None else "" if v == 0 else f"{v:.3g}" for v in values]
    if items and not items[-1]:
        items[-1] = "0"
    text = ",".join(items)
    if "a" in text or "i" in text:  # nan, inf
        text = ",".join(_SPECIAL.get(item, item) for item in items)
    return f"[{text}]"


def _histogram(h: Histogram) -> dict[str, Any]:
    """``{lo, hi, counts}`` when the edges are equal-width (to 1e-6 of the range), else ``{edges, counts}``."""
    edges, bins = h.edges, len(h.counts)
    if bins and len(edges) == bins + 1:
        lo, hi = edges[0], edges[-1]
        tolerance = 1e-6 * max(abs(hi - lo), 1e-12)
        if all(abs(e - (lo + (hi - lo) * i / bins)) <= tolerance for i, e in enumerate(edges)):
            return {"lo": _round(lo), "hi": _round(hi), "counts": h.counts}
    return {"edges": [_round(e) for e in edges], "counts": h.counts}


def _text(s: str) -> str:
    """``s`` with lone surrogates replaced, so that it encodes as UTF-8."""
    return s.encode("utf-8", errors="replace").decode("utf-8")


def _js(call: str, *args: str) -> str:
    """A data file: one call of ``call`` with the JSON ``args``; '</' is escaped so that no text can close a
    <script>, and U+2028/U+2029 so that older engines parse the string literals."""
    body = ",".join(args).replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"{call}({body});\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class _Tokens:
    """The tokens one data file mentions, most frequent first; the file refers to a token by its position here
    (small numbers for common tokens) and stores ``ids`` (the token ids) and ``text`` (decoded, null if unknown)."""

    def __init__(self, counts: Counter[int]) -> None:
        self.ids = sorted(counts, key=lambda t: (-counts[t], t))
        self.position = {t: i for i, t in enumerate(self.ids)}

    def ref(self, token: int | None) -> int | None:
        return None if token is None else self.position[token]

    def json(self, vocabulary: dict[int, str]) -> str:
        text = [_text(vocabulary[t]) if t in vocabulary else None for t in self.ids]
        return _dumps({"ids": self.ids, "text": text})


def _context(c: Context, tokens: _Tokens) -> str:
    position = tokens.position
    parts = [
        str(c.row),
        str(c.text),
        str(c.position),
        _num(c.value),
        "[" + ",".join([str(position[t]) for t in c.tokens]) + "]",
        str(c.centre),
        _values(c.values),
    ]
    if c.ablation_effect is not None:
        parts.append(_values(c.ablation_effect))
    return "[" + ",".join(parts) + "]"


def _contexts(contexts: Iterable[Context], tokens: _Tokens) -> str:
    return "[" + ",".join(_context(c, tokens) for c in contexts) + "]"


def _best_f1(latent: LatentFeatures) -> float | None:
    for label in latent.labels:
        if label.name == latent.best_label:
            return label.f1
    return None


def _diagnosis(d: LatentDiagnosis) -> dict[str, Any]:
    """``d`` without its defaults (None, False, empty), floats rounded."""
    out: dict[str, Any] = {}
    for key, value in d.model_dump(mode="json").items():
        if value is None or value is False or value == [] or value == {}:
            continue
        out[key] = _round(value) if isinstance(value, float) else value
    return out


def _latent_json(latent: LatentFeatures, tokens: _Tokens) -> str:
    fields = {
        "id": latent.latent,
        "count": latent.count,
        "density": _round(latent.density),
        "dead": latent.dead,
        "mean": _round(latent.mean),
        "max": _round(latent.max),
        "hist": _histogram(latent.histogram),
        "token": tokens.ref(latent.top_token),
        "share": _round(latent.top_token_share, 3),
        "cofiring": [[n.latent, _round(n.score, 3)] for n in latent.cofiring],
        "decoder": [[n.latent, _round(n.score, 3)] for n in latent.decoder],
        "logitsTop": [[tokens.ref(t.token), _round(t.score, 3)] for t in latent.logits_top],
        "logitsBottom": [[tokens.ref(t.token), _round(t.score, 3)] for t in latent.logits_bottom],
        "labels": [
            [s.label, s.name, _round(s.precision, 3), _round(s.recall, 3), _round(s.f1, 3)] for s in latent.labels
        ],
        "bestLabel": latent.best_label,
        "labelShare": _round(latent.top_label_share, 3),
        "diagnosis": None if latent.diagnosis is None else _diagnosis(latent.diagnosis),
    }
    bands = ",".join(
        _dumps([_round(b.lower_quantile), _round(b.upper_quantile), _round(b.lower), _round(b.upper), b.count])[:-1]
        + f",{_contexts(b.contexts, tokens)}]"
        for b in latent.quantiles
    )
    top = _contexts(latent.top, tokens)
    return _dumps(fields)[:-1] + f',"top":{top},"bands":[{bands}]}}'


def _token_counts(latents: Iterable[LatentFeatures]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for latent in latents:
        for c in latent.top:
            counts.update(c.tokens)
        for band in latent.quantiles:
            for c in band.contexts:
                counts.update(c.tokens)
        counts.update(t.token for t in latent.logits_top)
        counts.update(t.token for t in latent.logits_bottom)
        if latent.top_token is not None:
            counts[latent.top_token] += 1
    return counts


def _chunk_file(k: int, latents: Sequence[LatentFeatures], vocabulary: dict[int, str]) -> str:
    tokens = _Tokens(_token_counts(latents))
    body = ",".join(_latent_json(latent, tokens) for latent in latents)
    return _js("dictlabData.chunk", str(k), f'{{"tokens":{tokens.json(vocabulary)},"latents":[{body}]}}')


def _index_file(latents: Sequence[LatentFeatures], vocabulary: dict[int, str]) -> str:
    flag_counts = Counter(flag for latent in latents if latent.diagnosis for flag in latent.diagnosis.flags)
    flag_names = sorted(flag_counts, key=lambda name: (-flag_counts[name], name))
    flag_index = {name: i for i, name in enumerate(flag_names)}
    label_names = sorted({latent.best_label for latent in latents if latent.best_label is not None})
    label_index = {name: i for i, name in enumerate(label_names)}
    tokens = _Tokens(Counter(latent.top_token for latent in latents if latent.top_token is not None))
    columns = {
        "latent": [latent.latent for latent in latents],
        "density": [_round(latent.density) for latent in latents],
        "count": [latent.count for latent in latents],
        "max": [_round(latent.max) for latent in latents],
        "mean": [_round(latent.mean) for latent in latents],
        "dead": [int(latent.dead) for latent in latents],
        "token": [tokens.ref(latent.top_token) for latent in latents],
        "share": [_round(latent.top_token_share, 3) for latent in latents],
        "label": [None if latent.best_label is None else label_index[latent.best_label] for latent in latents],
        "f1": [_round(_best_f1(latent), 3) for latent in latents],
        "flags": [[flag_index[f] for f in latent.diagnosis.flags] if latent.diagnosis else [] for latent in latents],
        "flagNames": flag_names,
        "flagCounts": [flag_counts[name] for name in flag_names],
        "labelNames": label_names,
    }
    return _js("dictlabData.index", _dumps(columns)[:-1] + f',"tokens":{tokens.json(vocabulary)}}}')


def _meta_file(report: FeatureReport, latents: Sequence[LatentFeatures], chunk: int) -> str:
    meta = {
        "source": report.source.model_dump(mode="json"),
        "latents": len(latents),
        "live": sum(not latent.dead for latent in latents),
        "dead": sum(latent.dead for latent in latents),
        "chunk": chunk,
        "chunks": [[part[0].latent, part[-1].latent] for part in _chunks(latents, chunk)],
        "diagnosis": report.diagnosis,
        "seconds": {key: _round(value) for key, value in report.seconds.items()},
    }
    return _js("dictlabData.meta", _dumps(meta))


def _chunks(latents: Sequence[LatentFeatures], chunk: int) -> list[Sequence[LatentFeatures]]:
    return [latents[i : i + chunk] for i in range(0, len(latents), chunk)]


def _shell(page: str, title: str, subtitle: str, status: str) -> str:
    esc = html.escape
    on_error = (
        "var s=document.getElementById('status');s.className='error';"
        "s.textContent='app.js is missing: copy the whole browser folder.'"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="style.css">
</head>
<body data-page="{page}">
<header class="top">
<a class="home" href="{INDEX_HTML}">dictlab features</a>
<span class="source" title="{esc(subtitle, quote=True)}">{esc(subtitle)}</span>
</header>
<main id="main"><p id="status" class="status">{esc(status)}</p></main>
<noscript><p class="error">This page needs JavaScript to show its data.</p></noscript>
<script src="app.js" onerror="{esc(on_error, quote=True)}"></script>
</body>
</html>
"""


def write_browser(report: FeatureReport, out: Path, *, chunk: int = 256) -> Path:
    """Write the browser of ``report`` into the folder ``out`` and return the path of its index.html.

    ``chunk`` latents (consecutive in id order) share one data file; latent.html loads only the file of the
    latent it shows. index.html is written last, so a folder with it is complete. Raises ValueError for
    ``chunk < 1`` or repeated latent ids.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    latents = sorted(report.latents, key=lambda latent: latent.latent)
    repeated = [a.latent for a, b in pairwise(latents) if a.latent == b.latent]
    if repeated:
        raise ValueError(f"latent ids repeat in the report: {sorted(set(repeated))[:10]}")
    out = Path(out)
    index = out / INDEX_HTML
    index.unlink(missing_ok=True)  # until the rewrite is complete
    data = out / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    parts = _chunks(latents, chunk)
    written: set[str] = set()
    for k, part in enumerate(parts):
        name = chunk_filename(k)
        (data / name).write_text(_chunk_file(k, part, report.vocabulary), encoding="utf-8")
        written.add(name)
    for stale in data.glob("latents-*.js"):
        if stale.name not in written:
            stale.unlink()
    (data / "index.js").write_text(_index_file(latents, report.vocabulary), encoding="utf-8")
    (data / "meta.js").write_text(_meta_file(report, latents, chunk), encoding="utf-8")
    assets = resources.files("dictlab.report") / "browser_assets"
    for name in ASSETS:
        with resources.as_file(assets / name) as path:
            shutil.copyfile(path, out / name)
    source = report.source
    subtitle = f"{source.model} · {source.module} · {source.run} · {source.rows:,} rows · {len(latents):,} latents"
    (out / LATENT_HTML).write_text(
        _shell("latent", f"latent · {source.model} {source.module}", subtitle, "Loading…"), encoding="utf-8"
    )
    index.write_text(
        _shell("index", f"latents · {source.model} {source.module}", subtitle, "Loading data/index.js…"),
        encoding="utf-8",
    )
    return index
