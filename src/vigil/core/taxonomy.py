"""The artifact taxonomy (L1 > L2 > L3 names) that explanations and ground truth use.

The YAML ships inside the package (a copy of ``shared/taxonomy.yaml``) so that an installed Vigil
needs no checkout beside it; a test keeps the copy identical to the shared one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Taxonomy:
    version: int
    l3_to_path: dict[str, tuple[str, str]]  # L3 name -> (L1, L2)

    @property
    def l3_names(self) -> tuple[str, ...]:
        return tuple(self.l3_to_path)

    def is_l3(self, name: str) -> bool:
        return name in self.l3_to_path


def parse_taxonomy(text: str) -> Taxonomy:
    doc = yaml.safe_load(text)
    mapping: dict[str, tuple[str, str]] = {}
    for l1, l2s in doc["levels"].items():
        for l2, l3s in l2s.items():
            for l3 in l3s:
                mapping[l3] = (l1, l2)
    return Taxonomy(version=int(doc["version"]), l3_to_path=mapping)


@lru_cache(maxsize=4)
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """The packaged taxonomy, or the one at ``path``."""
    text = Path(path).read_text() if path else (
        resources.files("vigil") / "data" / "taxonomy.yaml"
    ).read_text()
    return parse_taxonomy(text)
