"""Griffe extension: a pydantic field's ``Field(description=...)`` becomes its docstring on the API pages.

dictlab documents every config field once, in its ``description`` (which also becomes the CLI help); this shows the
same text in the API reference instead of leaving the fields undocumented.
"""

import ast
from typing import Any

import griffe


class FieldDescriptions(griffe.Extension):
    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, agent: Any, **kwargs: Any) -> None:
        if attr.docstring is not None or not isinstance(node, ast.AST):
            return
        value = node.value if isinstance(node, ast.AnnAssign | ast.Assign) else None
        if not (isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "Field"):
            return
        for keyword in value.keywords:
            if keyword.arg == "description":
                try:
                    text = ast.literal_eval(keyword.value)
                except ValueError:
                    return
                if isinstance(text, str):
                    attr.docstring = griffe.Docstring(text, parent=attr)
                return
