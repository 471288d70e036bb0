"""The names of units and categories in the reader's language: the one place that decides which name a page shows.

Units and categories have a Chinese name of record (``name``; a category's ``path`` joins its ancestors' names with
``/``) and an optional English name (``name_en``, migration 0054). An English reader sees the English name where one
is set; a place without one — a street, town, community or village an administrator has not named in English, as the
~400 communities of an imported district — its name in the standard romanisation, computed here and stored nowhere
(``org.placenames.romanised``: 望岗社区居委会 → Wanggang Community), so an administrator's ``name_en`` always wins and
a renamed unit's follows its new name; else (a department, a sub-centre, a category) the Chinese name. A category
path is put in English part by part (城乡建设/住房保障 → Urban-rural development/Housing security, a part without an
English name staying Chinese). Stored values, the API's ``name`` fields, exports and search keep the Chinese names:
only what is shown changes.

Pages hold names as text (read models carry ``lead_unit_name``, ``category_path``, the id → name maps of
``web.support.names_of``), so the English names are looked up by the Chinese text: :class:`EnglishNames`, built from
the two tables once per process while they are unchanged (:mod:`cityhub.refdata`). A Chinese name two units share
with different English names (one's ``name_en`` and another's romanised name too) is not put in English: which was
meant is unknown. The web UI asks through ``Translator.unit_name`` and ``Translator.category_name`` (``web.i18n``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub import refdata
from cityhub.org.models import Unit
from cityhub.org.placenames import romanised
from cityhub.workorders.categories import SEPARATOR
from cityhub.workorders.models import Category

MAX_DEPTH = 20  # a taxonomy deeper than this (or a parent chain gone round in a circle) is not walked further


def _agreed(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, str]:
    """Chinese name → English name, for the names whose every holder has the same English name."""
    seen: dict[str, set[str]] = defaultdict(set)
    for name, name_en in pairs:
        if name:
            seen[name].add(name_en or "")
    return {name: english.pop() for name, english in seen.items() if len(english) == 1 and "" not in english}


@dataclass(frozen=True)
class EnglishNames:
    """The English names of the units and categories, by the Chinese text a page holds."""

    units: Mapping[str, str]  # a unit's name (or short name) → its English name
    paths: Mapping[str, str]  # a category's path → the path in English, part by part
    categories: Mapping[str, str]  # a category's name → its English name

    def unit(self, name: str) -> str:
        """A unit's name (or short name) in English: its English name, else as it is."""
        return self.units.get(name, name)

    def category(self, name_or_path: str) -> str:
        """A category's name or path in English: a known path part by part, a name by its node's English name (the
        same English name wherever the name is used), a path no longer in the taxonomy part by part by name; else as
        it is."""
        found = self.paths.get(name_or_path)
        if found is not None:
            return found
        if SEPARATOR in name_or_path:
            return SEPARATOR.join(self.categories.get(part, part) for part in name_or_path.split(SEPARATOR))
        return self.categories.get(name_or_path, name_or_path)


def build(session: Session) -> EnglishNames:
    # A place's English name is its administrator's (name_en), else its name romanised (placenames.romanised).
    units = [
        (name, short, name_en or romanised(name, tier))
        for name, short, name_en, tier in session.execute(select(Unit.name, Unit.short_name, Unit.name_en, Unit.tier))
    ]
    by_name = _agreed((name, name_en) for name, _, name_en in units)
    by_short = _agreed((short, name_en) for _, short, name_en in units if short)
    full_names = {name for name, _, _ in units}
    for short, name_en in by_short.items():
        if short not in full_names:  # a short name that is another unit's full name is that unit's
            by_name[short] = name_en
    columns = (Category.id, Category.name, Category.parent_id, Category.path, Category.name_en)
    nodes = {row.id: row for row in session.execute(select(*columns))}
    paths: dict[str, str] = {}
    for node in nodes.values():
        parts: list[str] = []
        current: Any = node
        while current is not None and len(parts) < MAX_DEPTH:
            parts.append(current.name_en or current.name)
            current = nodes.get(current.parent_id) if current.parent_id is not None else None
        english = SEPARATOR.join(reversed(parts))
        if english != node.path:
            paths[node.path] = english
    return EnglishNames(
        units=by_name, paths=paths, categories=_agreed((node.name, node.name_en) for node in nodes.values())
    )


def english_names(session: Session) -> EnglishNames:
    """The English names as the units and categories now stand, from the process's cache while neither table
    changed."""
    return refdata.cached(session, "localnames.english", ("units", "categories"), build)
