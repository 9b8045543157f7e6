"""Read JSON written by someone else: bounded in size and nesting, one object, errors naming the file."""

import json
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 256 * 2**20
"""Largest JSON file dictlab reads (a manifest of a million shards is ~60 MB)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects dictlab accepts (its own files nest fewer than 8 levels)."""


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(text: str, where: str, error: type[ValueError] = ValueError) -> Any:
    """Parse ``text`` (from ``where``) with the nesting bound; ``error`` says what failed."""
    try:
        value = json.loads(text)
    except RecursionError as err:
        raise error(f"{where} nests arrays or objects deeper than {MAX_JSON_DEPTH} levels") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{where} is not valid JSON: {err}") from err
    if json_depth(value) > MAX_JSON_DEPTH:
        raise error(f"{where} nests arrays or objects deeper than {MAX_JSON_DEPTH} levels")
    return value


def read_json_object(path: Path, error: type[ValueError], missing: str) -> dict[str, Any]:
    """Parse a file holding one JSON object; ``error`` names the file (``missing`` says what its absence means)."""
    if not path.is_file():
        raise error(f"{path} is missing: {missing}")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise error(f"{path} is {size / 2**20:.0f} MiB; dictlab reads JSON files up to {MAX_JSON_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path} is not UTF-8 text: {err}") from err
    obj = parse_json(text, str(path), error)
    if not isinstance(obj, dict):
        raise error(f"{path} must hold a JSON object, got {type(obj).__name__}")
    return obj
