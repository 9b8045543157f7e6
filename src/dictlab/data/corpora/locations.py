"""Where the offline corpora live: an environment variable first, then the places package managers put them.

Every corpus has one variable that names its folder outright (for a copy anywhere), and a list of standard
locations (Debian/Ubuntu, Fedora, Homebrew, /usr/local); the first that holds the corpus's marker wins.
"""

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dictlab.data.corpora.labelled import CorpusError


@dataclass(frozen=True)
class CorpusLocation:
    """How to find one corpus folder."""

    name: str
    env_var: str
    """Names the folder directly when set."""
    candidates: tuple[str, ...]
    """Glob patterns of standard folders, in order of preference (within a pattern: newest version first)."""
    marker: str
    """A path relative to the folder that must exist for it to count."""
    install: str
    """How to install the corpus, for the error message."""

    def find(self) -> Path:
        """The corpus folder; :class:`CorpusError` naming the variable and every place tried otherwise."""
        if self.env_var in os.environ:
            folder = Path(os.environ[self.env_var])
            if not (folder / self.marker).exists():
                raise CorpusError(f"{self.env_var}={folder} does not hold the {self.name} corpus ({self.marker})")
            return folder
        tried = []
        for pattern in self.candidates:
            for folder in sorted(glob.glob(pattern), key=_version_key, reverse=True):
                if (Path(folder) / self.marker).exists():
                    return Path(folder)
            tried.append(pattern)
        raise CorpusError(
            f"the {self.name} corpus was not found in {', '.join(tried)}; {self.install}, or set {self.env_var} "
            "to its folder"
        )


def _version_key(path: str) -> list[int | str]:
    """Sort key that orders python3.9 < python3.11 (numeric runs compared as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


WORDNET = CorpusLocation(
    name="WordNet",
    env_var="WNSEARCHDIR",
    candidates=(
        "/usr/share/wordnet",
        "/usr/local/share/wordnet",
        "/usr/local/WordNet-3.0/dict",
        "/opt/homebrew/share/wordnet",
        "/opt/homebrew/Cellar/wordnet/*/dict",
        "/usr/local/Cellar/wordnet/*/dict",
    ),
    marker="data.noun",
    install="install it with `apt-get install wordnet-base` (Debian/Ubuntu) or `brew install wordnet`",
)
"""WordNet 3.0 database files (``data.noun``, ``data.verb``); ``WNSEARCHDIR`` is WordNet's own variable."""

FORTUNES = CorpusLocation(
    name="fortunes",
    env_var="DICTLAB_FORTUNES_DIR",
    candidates=(
        "/usr/share/games/fortunes",
        "/usr/share/fortune",
        "/usr/local/share/games/fortunes",
        "/opt/homebrew/share/games/fortunes",
    ),
    marker="fortunes",
    install="install them with `apt-get install fortunes fortunes-min` (Debian/Ubuntu) or `brew install fortune`",
)
"""Fortune cookie files, one category per file."""

PYTHON_DOCS = CorpusLocation(
    name="Python documentation sources",
    env_var="DICTLAB_PYTHON_DOCS",
    candidates=(
        "/usr/share/doc/python3*/html/_sources",
        "/usr/share/doc/python3*-doc/html/_sources",
        "/usr/local/share/doc/python3*/html/_sources",
    ),
    marker="library",
    install="install them with `apt-get install python3-doc` (or python3.X-doc)",
)
"""The reST sources of the Python documentation (``html/_sources``), newest Python first."""
