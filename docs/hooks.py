"""MkDocs hook: render the Sphinx-style cross-reference roles of dictlab's docstrings as plain code.

Docstrings write ``:class:`Activation` `` and ``:mod:`~dictlab.reproductions.bench` ``; the API pages show them as
``Activation`` and ``dictlab.reproductions.bench``.
"""

import re

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj|const):(?=<code)")
_TILDE = re.compile(r"(<code[^>]*>)~")


def on_page_content(html: str, **kwargs: object) -> str:
    return _TILDE.sub(r"\1", _ROLE.sub("", html))
