"""Address → jurisdiction (地址 → 区 / 镇街 / 村社).

Free-text Chinese addresses ("白云区嘉禾街望岗社区…", "太和镇大源村…") are resolved against a gazetteer built
from the administrative divisions (district → street/town → community/village), and coordinates against unit
boundaries.

How text is resolved:

1. The text is normalised (NFKC, traditional → simplified, whitespace removed).
2. An Aho-Corasick automaton over every alias finds all mentions; overlapping mentions keep the longest.
   Aliases are the full names (嘉禾街道, 望岗社区居委会), short forms (嘉禾街, 望岗社区, 大源村, 太和镇) and
   bare cores (嘉禾, 望岗, 太和). Bare cores are weak evidence; bare cores followed by a road or
   landmark suffix (京溪路, 海珠广场) are weaker still, and common words (人民, 建设, 珠江 …) weaker again.
3. If a level is still missing, one-character typos of names are looked up: a substituted character (core ≥ 2
   characters, alias ≥ 3) or a dropped one (core ≥ 3); a community's bare name of three characters or more
   (加拿大花元 for 加拿大花园) only among the communities of the street the text names. A typo'd name must lie
   within what the text names exactly (a community in the named street, else the named district); a name with a
   2-character core needs that context, or another mention of the same unit in the text (长舟街长洲大道: 长洲 in the
   road's name); it may not cut in two a name the exact reading rests on (市桥大街 is not 桥南街 misspelt). A typo
   hit lowers confidence; one that fits several names makes the result ambiguous among them.
4. Every mention's candidate units give a chain (district, street, community); each chain is scored by the
   mentions it explains (a community implies its street and district). A level counts only when a mention of
   its own supports it; a weak (road-embedded) mention supports a level only under an otherwise supported
   parent (蟾蜍石东路 inside 同和街 → 蟾蜍石社区; 幸福路 alone → nothing).
5. The best chain wins; on a tie between chains of equal depth the result is ``ambiguous`` with the common
   ancestor only and the tied chains as candidates. So is a contradiction: a street or district named in full
   (嘉禾街道, 天河区) with a community that lies in another one (握山社区, of 同和街道) — the text says two places,
   nothing in it tells which is meant; the answer is what the two readings agree on (白云区), both readings the
   candidates. An answer resting on bare names only is contradicted by a bare district name as well (黄埔中新知识城:
   中新 is 增城区's). Except a town named with a village that now belongs to a street of the same district
   (太和镇大源村: 大源街道 was set up from 太和镇's land, 撤镇设街, and the old address lives on): the village's
   reading, with reduced confidence.

An address in another city (深圳市坪山区石井街道, 北京市朝阳区望京街道) is not placed in this one because its street or
town has a namesake here: a province, city or county-level area of another city named before the first local name,
with no local city or district named, leaves the address unresolved (evidence ``!深圳市``). The names come from the
country's divisions (``data/china_places.tsv``); a gazetteer whose districts do not carry national codes has no
"elsewhere" of that kind. Places named by code, as anonymised data names other cities' (A市, E12市, K2区, J3县), are
another city's for any gazetteer (unless one of its own districts is named so).

Roads and landmarks are not resolved on their own: there is no built-in landmark list. A district's own address
library (地名别名, ``cityhub.org.aliases``) adds names to the database's gazetteer (``extra_names``): each a name of
its street or community in full (石井大道 → 石井街道, 石井大道88号 included; 大学城 → 小谷围街道).
Coordinates of the packaged district outlines are GCJ-02 (as served by Aliyun DataV), the datum of Chinese web
maps; raw GPS (WGS-84) points differ by a few hundred metres, which matters only near a boundary.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick

from cityhub.errors import ValidationFailed
from cityhub.nlp.text import squeeze
from cityhub.textfiles import read_text

DISTRICT, STREET, COMMUNITY = "district", "street", "community"
_LEVEL_DEPTH = {DISTRICT: 0, STREET: 1, COMMUNITY: 2}

# Evidence weights per alias kind: a named street (嘉禾街) or community (望岗社区) is strong,
# a bare core is weak.
W_DISTRICT_FULL = 3.0
W_DISTRICT_BARE = 2.0
W_STREET_FULL = 4.0
W_STREET_BARE = 2.5
W_COMMUNITY_FULL = 4.0
W_HINT = 3.0
# A chain must reach this score to be reported: a lone bare 2-character community name does not.
MIN_SCORE = 2.0
# A level counts as supported by a mention only at or above this weight (unless its parent is supported).
MIN_SUPPORT = 1.0
ROAD_FACTOR = 0.3  # bare core followed by 路/大道/广场 …: part of another proper name
COMMON_FACTOR = 0.3  # bare core that is also an everyday word
FUZZY_FACTOR = 0.8
# A typo that fits more names than this is no evidence.
MAX_TYPO_READINGS = 3

# Bare cores that are everyday words; they need context (a named district or street) to count.
COMMON_WORDS = frozenset(
    [
        "人民",
        "建设",
        "前进",
        "太平",
        "珠江",
        "新华",
        "凤凰",
        "中南",
        "东方",
        "和平",
        "团结",
        "幸福",
        "光明",
        "东风",
        "新村",
        "中心",
        "文化",
        "胜利",
        "红旗",
        "花园",
        "公园",
        "市场",
        "新街",
        "西街",
        "东街",
        "南街",
        "北街",
        "大街",
        "新城",
        "华南",
        "中山",
        "解放",
        "民主",
        "长安",
        "金融",
        "科技",
        "工业",
        "商业",
        "农业",
        "东山",
        "西村",
        "南村",
        "北村",
        "东村",
        "新安",
        "永安",
        "长兴",
        "新民",
        "联合",
        "大学",
        "学校",
        "医院",
        "车站",
        "广场",
    ]
)
# Divisions named by code, as anonymised data names other cities' places (A市, E12市, K2区, J3县): always another
# place than the gazetteer's (unless one of its own districts is named so). Not 市场, nor a compound's zone: one
# without a number (幸福花园A区), one named after its compound (幸福花园B2区, 二期C3区) or followed by a building or
# house number (B2区3栋, B2区-5号); any other zone (B2区) after a local name is weighed like any other city's name.
_CODED_PLACE = re.compile(
    r"(?<![A-Za-z0-9])(?<![园苑城期庭府居邸院湾])[A-Z](?:\d{1,2}(?:[县市]|区(?![\s\-－—]*[\d０-９一二三四五六七八九十]+\s*[栋座幢号楼单梯]))|市)(?!场)"
)
# What may follow a bare core when it is the start of a road or landmark name rather than a division.
_ROAD_SUFFIX_1 = frozenset("路巷桥站山涌苑园馆店楼厦场港湾岛")
_ROAD_SUFFIX_2 = frozenset(
    [
        "大道",
        "大街",
        "广场",
        "公园",
        "花园",
        "医院",
        "学校",
        "中学",
        "小学",
        "大学",
        "学院",
        "市场",
        "商场",
        "酒店",
        "宾馆",
        "地铁",
        "新城",
        "大厦",
        "机场",
        "码头",
        "中心",
        "书店",
        "银行",
        "影院",
        "公司",
        "工厂",
        "大桥",
        "隧道",
        "立交",
        "高速",
        "一横",
        "二横",
        "直街",
        "横街",
    ]
)
_DIRECTIONS = frozenset("东南西北中")

# Districts merged away whose names live on in addresses (芳村区 → 荔湾区, 东山区 → 越秀区, 萝岗区 → 黄埔区).
FORMER_DISTRICTS: dict[str, tuple[str, ...]] = {
    "荔湾区": ("芳村区",),
    "越秀区": ("东山区",),
    "黄埔区": ("萝岗区", "广州开发区"),
}

# Community-name suffixes in the divisions data, longest first; the kind decides which short forms exist.
_COMMUNITY_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("社区居民委员会", "community"),
    ("社区居委委员会", "community"),
    ("社区居民居委会", "community"),
    ("社区居居委会", "community"),
    ("社区居委会会", "community"),
    ("社区居委会", "community"),
    ("居民委员会", "community"),
    ("居委会", "community"),
    ("村民委员会", "village"),
    ("村委会", "village"),
    ("经济联合社", "village"),
    ("经济联社", "village"),
    ("虚拟生活区", "area"),
    ("生活区", "area"),
    ("社区", "community"),
)


@dataclass(frozen=True, slots=True)
class Division:
    """One unit of the gazetteer: a district (区), street/town (街道/镇) or community/village (社区/村)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    boundary: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    district: str | None
    district_code: str | None
    street: str | None
    street_code: str | None
    community: str | None
    community_code: str | None
    score: float


@dataclass(slots=True)
class Location:
    """Where an address (or point) lies. Names and codes are ``None`` where unknown."""

    input: str
    district: str | None = None
    district_code: str | None = None
    street: str | None = None
    street_code: str | None = None
    community: str | None = None
    community_code: str | None = None
    ambiguous: bool = False
    confidence: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)
    # The alias texts that were used, in text order (typo hits marked with "~", places of another city with "!").
    evidence: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The CLI's JSON line: exactly the keys of the ``locate`` contract."""
        return {
            "input": self.input,
            "district": self.district,
            "street": self.street,
            "street_code": self.street_code,
            "community": self.community,
            "community_code": self.community_code,
            "ambiguous": self.ambiguous,
            "confidence": round(self.confidence, 3),
        }


# (unit code, weight) of the units a name may stand for
_Cands = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    text: str
    cands: _Cands
    fuzzy: bool = False
    weak: bool = False  # road/landmark-embedded or common-word bare core


@dataclass(slots=True)
class _Scan:
    """What one pass of the gazetteer's automaton found in a text."""

    mentions: list[_Mention] = field(default_factory=list)
    # (start, end, candidates) of names with one character dropped
    dropped: list[tuple[int, int, _Cands]] = field(default_factory=list)
    # (start, end, name, the own city's?) of places named by the country's divisions
    places: list[tuple[int, int, str, bool]] = field(default_factory=list)


@cache
def _t2s() -> Any:
    """OpenCC's traditional → simplified converter (the C++ library's binding: tens of microseconds for a long
    message, where the pure-Python reimplementation took milliseconds)."""
    import opencc

    return opencc.OpenCC("t2s")


def normalise(text: str) -> str:
    """NFKC, traditional → simplified, no whitespace: the form both aliases and input are matched in."""
    text = squeeze(text)
    if not text:
        return text
    converted: str = _t2s().convert(text)
    return converted


def _level_of_code(code: str) -> str | None:
    return {6: DISTRICT, 9: STREET, 12: COMMUNITY}.get(len(code))


def split_community(name: str) -> tuple[str, str]:
    """``(core, kind)`` of a community name.

    望岗社区居委会 → (望岗, community); 大源村委会 → (大源, village).
    """
    for suffix, kind in _COMMUNITY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], kind
    if name.endswith("村") and len(name) > 2:
        return name[:-1], "village"
    return name, "other"


def split_street(name: str) -> tuple[str, str]:
    """``(core, kind)`` of a street/town name: 嘉禾街道 → (嘉禾, street); 太和镇 → (太和, town)."""
    for suffix, kind in (("街道办事处", "street"), ("街道", "street"), ("镇", "town"), ("乡", "town")):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], kind
    return name, "other"


def _bare_weight(core: str, base: float) -> float:
    if len(core) >= 4:
        return max(base, 2.5)
    if len(core) == 3:
        return max(base, 2.0)
    return base


def aliases_for(
    unit: Division, district_shorts: frozenset[str] = frozenset(), neighbours: frozenset[str] = frozenset()
) -> list[tuple[str, float, str]]:
    """``(alias, weight, core)`` for one unit; ``core`` is where a one-character typo may fall. ``neighbours``: the
    names the other communities of a community's street go by."""
    out: list[tuple[str, float, str]] = []
    name = normalise(unit.name)
    if unit.level == DISTRICT:
        out.append((name, W_DISTRICT_FULL, name[:-1] if name[-1:] in "区县市" else name))
        if name[-1:] in "区县市" and len(name) >= 3:
            out.append((name[:-1], W_DISTRICT_BARE, ""))
            # Former county-level cities (增城市, 从化市, 番禺市, 花都市) still appear in addresses.
            out.append((name[:-1] + "市", W_DISTRICT_FULL, name[:-1]))
        out += [(old, W_DISTRICT_FULL, "") for old in FORMER_DISTRICTS.get(name, ())]
    elif unit.level == STREET:
        core, kind = split_street(name)
        out.append((name, W_STREET_FULL, core))
        if kind == "street":
            out += [(core + "街道", W_STREET_FULL, core), (core + "街", W_STREET_FULL, core)]
            out.append((core + "街道办", W_STREET_FULL, core))
            # Many streets were towns until recently (钟村镇 → 钟村街道); old addresses keep the 镇.
            out.append((core + "镇", W_STREET_FULL - 0.5, core))
        elif kind == "town":
            out.append((core + "镇", W_STREET_FULL, core))
        if kind != "other" and len(core) >= 2:
            # A street core equal to a district's short name (越秀区白云街道 vs 白云区)
            # defers to the district.
            base = 1.5 if core in district_shorts else W_STREET_BARE
            out.append((core, _bare_weight(core, base), ""))
    elif unit.level == COMMUNITY:
        core, kind = split_community(name)
        out.append((name, W_COMMUNITY_FULL, core))
        if kind == "village":
            village = core if core.endswith("村") else core + "村"
            forms = [village, village + "委会", village + "委", village + "民委员会", core + "村委会"]
            forms += [core + "经济联社", core + "经济联合社", core + "股份合作经济联社"]
        elif kind == "community":
            forms = [core + "社区", core + "社区居委会", core + "社区居委", core + "居委会", core + "居委"]
            forms.append(core + "社区居民委员会")
            # Villages turned communities (村改居: 庆丰村 → 庆丰社区) keep their old name in addresses; a village still
            # called so elsewhere outweighs it unless a street or district agrees with this one. Not when a
            # neighbour bears that name itself (石榴岗村社区 beside 石榴岗社区).
            village = core + "村"
            if not core.endswith("村") and village not in neighbours:
                out += [(village, W_COMMUNITY_FULL - 1.0, core), (village + "委会", W_COMMUNITY_FULL - 1.0, core)]
        elif kind == "area":
            forms = [core + "生活区"]
        else:
            forms = []
        out += [(f, W_COMMUNITY_FULL, core) for f in forms]
        if len(core) >= 2 and kind != "other":
            out.append((core, _bare_weight(core, 1.5), ""))
    seen: dict[str, tuple[str, float, str]] = {}
    for alias, weight, core in out:
        if alias and (alias not in seen or seen[alias][1] < weight):
            seen[alias] = (alias, weight, core)
    return list(seen.values())


def _road_follows(text: str, end: int) -> bool:
    nxt = text[end : end + 2]
    if not nxt:
        return False
    if nxt[0] in _ROAD_SUFFIX_1 or nxt in _ROAD_SUFFIX_2:
        return True
    # 天河北路, 京溪东街: a direction then a road word.
    return len(nxt) == 2 and nxt[0] in _DIRECTIONS and nxt[1] in "路街道"


# --- geometry -------------------------------------------------------------------------------------------


def _ring_contains(ring: Sequence[Sequence[float]], x: float, y: float) -> bool:
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def geometry_contains(geometry: Mapping[str, Any], lng: float, lat: float) -> bool:
    """Even-odd point-in-polygon for a GeoJSON Polygon or MultiPolygon (holes respected)."""
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    elif kind == "Feature":
        return geometry_contains(geometry["geometry"], lng, lat)
    else:
        return False
    for rings in polygons:
        if rings and _ring_contains(rings[0], lng, lat) and not any(_ring_contains(h, lng, lat) for h in rings[1:]):
            return True
    return False


def _bbox(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        else:
            for sub in c:
                walk(sub)

    walk(geometry.get("coordinates", []))
    if not xs:
        return (math.inf, math.inf, -math.inf, -math.inf)
    return (min(xs), min(ys), max(xs), max(ys))


# --- gazetteer ------------------------------------------------------------------------------------------


@cache
def _china_places() -> tuple[tuple[str, str], ...]:
    """(code, name) of every province (2 digits), prefecture-level city (4) and county-level area (6)."""
    text = (resources.files("cityhub.nlp") / "data" / "china_places.tsv").read_text(encoding="utf-8")
    return tuple((code, name) for code, _, name in (line.partition("\t") for line in text.splitlines()[1:]) if name)


def _elsewhere_names(units: Iterable[Division], aliases: Iterable[str]) -> dict[str, bool]:
    """Names of the provinces, cities and county-level areas outside the gazetteer's own cities (→ False) and of its
    own cities (→ True); empty when the districts do not carry national codes."""
    places = _china_places()
    by_code = dict(places)
    districts = [u for u in units if u.level == DISTRICT]
    own = [d for d in districts if by_code.get(d.code) == d.name]
    if not own:
        return {}
    cities = {d.code[:4] for d in own}
    provinces = {d.code[:2] for d in own}
    home = {normalise(by_code[c]) for c in cities if c in by_code}
    home |= {h[:-1] for h in home if h.endswith("市") and len(h) >= 3}
    foreign: set[str] = set()
    for code, raw in places:
        name = normalise(raw)
        # Two-character areas (城区, 郊区) are words, not places; the own province is no evidence either way.
        if len(name) < 3 or (code[:2] in provinces and len(code) == 2) or code[:4] in cities:
            continue
        foreign.add(name)
    # A name inside one of the gazetteer's own aliases is a local name (贵阳's 白云区 is Guangzhou's too).
    probe = ahocorasick.Automaton()
    for name in foreign:
        probe.add_word(name, name)
    probe.make_automaton()
    for alias in aliases:
        for _, name in probe.iter(alias):
            foreign.discard(name)
    return {**dict.fromkeys(foreign, False), **dict.fromkeys(home, True)}


class _FuzzyAnchors:
    """Where in a text a one-typo form of a name can start, found without trying every window.

    A fuzzy key (a name with one character replaced by ``?``) keeps its last two characters when the wildcard is
    elsewhere, and its first ``min(2, length - 2)`` characters when the wildcard is in the last two. A window of the
    text can only equal a key if it ends with one of the first kind of pair or starts with one of the second: the
    windows found from those anchors are all the windows the exhaustive scan would match. The anchors are found in
    one pass of an Aho-Corasick automaton (in C) instead of three dictionary lookups per character of the text.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        tails: dict[str, set[int]] = {}
        heads: dict[str, set[int]] = {}
        for key in keys:
            if "?" in key[-2:]:
                heads.setdefault(key[: min(2, len(key) - 2)], set()).add(len(key))
            else:
                tails.setdefault(key[-2:], set()).add(len(key))
        # An anchor → (its length, lengths of the keys ending with it, lengths of the keys starting with it).
        self._automaton = ahocorasick.Automaton()
        for anchor in tails.keys() | heads.keys():
            self._automaton.add_word(
                anchor, (len(anchor), tuple(sorted(tails.get(anchor, ()))), tuple(sorted(heads.get(anchor, ()))))
            )
        if len(self._automaton):
            self._automaton.make_automaton()

    def window_starts(self, text: str) -> dict[int, set[int]]:
        """Window length → the start positions worth checking against the fuzzy keys of that length."""
        starts: dict[int, set[int]] = {}
        if not len(self._automaton):
            return starts
        n = len(text)
        for last, (size, tail_lengths, head_lengths) in self._automaton.iter(text):
            end = last + 1
            for length in tail_lengths:
                if end >= length:
                    starts.setdefault(length, set()).add(end - length)
            start = end - size
            for length in head_lengths:
                if start + length <= n:
                    starts.setdefault(length, set()).add(start)
        return starts


class Gazetteer:
    """Divisions with their aliases, a multi-pattern matcher and (optional) boundaries.

    ``extra_names``: (name, unit code) pairs a district's address library (地名别名: landmarks, roads, old names) adds
    to the names its divisions go by. Each is a name of that unit in full (the weight of a street's or community's
    full name, not a bare core: a road word after it does not weaken it; no typo of it is looked for); one given for
    two units is ambiguous between them, as any name two units share. Names of units not in the gazetteer are
    ignored."""

    def __init__(self, divisions: Iterable[Division], extra_names: Iterable[tuple[str, str]] = ()) -> None:
        self.units: dict[str, Division] = {}
        for d in divisions:
            if d.level in _LEVEL_DEPTH:
                self.units[d.code] = d
        if not self.units:
            raise ValidationFailed("gazetteer has no district, street or community units")
        district_shorts = frozenset(
            normalise(u.name)[:-1] for u in self.units.values() if u.level == DISTRICT and len(u.name) >= 3
        )
        index: dict[str, dict[str, float]] = {}
        self._fuzzy: dict[str, dict[str, float]] = {}
        self._fuzzy_core2: set[str] = set()  # fuzzy keys coming from a 2-character core: need context
        deletions: dict[str, dict[str, float]] = {}
        bare_keys: set[str] = set()
        # The names each street's communities go by (core, and a village's 村 form: 人和村委会 is 人和村), so that a
        # community's former-village alias does not take a name its neighbour bears.
        names: dict[str | None, dict[str, set[str]]] = {}
        for u in self.units.values():
            if u.level == COMMUNITY:
                core, kind = split_community(normalise(u.name))
                forms = {core, core if core.endswith("村") else core + "村"} if kind == "village" else {core}
                names.setdefault(u.parent_code, {})[u.code] = forms
        for u in self.units.values():
            siblings = names.get(u.parent_code, {}) if u.level == COMMUNITY else {}
            neighbours = frozenset(f for code, forms in siblings.items() if code != u.code for f in forms)
            for alias, weight, core in aliases_for(u, district_shorts, neighbours):
                bucket = index.setdefault(alias, {})
                bucket[u.code] = max(weight, bucket.get(u.code, 0.0))
                if core and len(core) >= 2 and len(alias) >= 3 and alias.startswith(core):
                    for i in range(len(core)):
                        key = alias[:i] + "?" + alias[i + 1 :]
                        fb = self._fuzzy.setdefault(key, {})
                        fb[u.code] = max(weight, fb.get(u.code, 0.0))
                        if len(core) == 2:
                            self._fuzzy_core2.add(key)
                elif not core and u.level == COMMUNITY and len(alias) >= 3:
                    # A community's bare name of three characters or more, mistyped (昌岗冬 for 昌岗东): only inside
                    # the street the text names.
                    for i in range(len(alias)):
                        key = alias[:i] + "?" + alias[i + 1 :]
                        fb = self._fuzzy.setdefault(key, {})
                        fb[u.code] = max(weight, fb.get(u.code, 0.0))
                        bare_keys.add(key)
                if core and len(core) >= 3 and alias.startswith(core):
                    for i in range(len(core)):
                        dropped = alias[:i] + alias[i + 1 :]
                        db = deletions.setdefault(dropped, {})
                        db[u.code] = max(weight, db.get(u.code, 0.0))
        self.extra_names = tuple(sorted({(normalise(name), code) for name, code in extra_names if code in self.units}))
        # What the extra names stand for by the divisions' own names alone (units_named(own=True)).
        self._own_of_extra = {name: dict(index.get(name, {})) for name, _ in self.extra_names}
        holders: dict[str, int] = {}
        for name, code in self.extra_names:
            if name:
                holders[name] = holders.get(name, 0) + 1
                bucket = index.setdefault(name, {})
                weight = W_STREET_FULL if self.units[code].level == STREET else W_COMMUNITY_FULL
                bucket[code] = max(weight, bucket.get(code, 0.0))
        self._aliases = index
        # Extra names given for several units: ambiguous between them whatever their levels (a community's landmark
        # that also names another street), not decided for the deeper one as a name two units happen to share.
        self._shared_extra = frozenset(name for name, count in holders.items() if count > 1)
        # Fuzzy keys that only a bare community name gives (no suffixed form of any unit has them).
        self._fuzzy_bare = frozenset(bare_keys)
        # One automaton finds, in one pass, the aliases and the names with one character dropped (江中街道 for
        # 江南中街道) that are not names themselves.
        entries: dict[str, tuple[_Cands, _Cands]] = {
            alias: (tuple(sorted(c.items())), ()) for alias, c in index.items()
        }
        for dropped, readings in deletions.items():
            if dropped not in index:
                entries[dropped] = ((), tuple(sorted(readings.items())))
        self._automaton = ahocorasick.Automaton()
        for key, (exact, typo) in entries.items():
            self._automaton.add_word(key, (key, exact, typo))
        self._automaton.make_automaton()
        # The names of other cities' places and of the own city, found by their last character (市, 区, 县 …):
        # cheaper than another automaton pass over the text.
        self._places = _elsewhere_names(self.units.values(), index)
        self.district_names = tuple(u.name for u in self.units.values() if u.level == DISTRICT)
        self._own_districts = {normalise(name) for name in self.district_names}
        lengths: dict[str, set[int]] = {}
        for name in self._places:
            lengths.setdefault(name[-1], set()).add(len(name))
        self._place_lengths = {last: sorted(n) for last, n in lengths.items()}
        self._place_ends = re.compile("[" + "".join(sorted(lengths)) + "]") if lengths else None
        self._fuzzy_lengths = sorted({len(k) for k in self._fuzzy})
        self._fuzzy_anchors = _FuzzyAnchors(self._fuzzy)
        self._bbox: dict[str, tuple[float, float, float, float]] = {
            u.code: _bbox(u.boundary) for u in self.units.values() if u.boundary
        }

    # construction ----------------------------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Gazetteer:
        """Rows with ``code``, ``name`` and optionally ``level``, ``parent_code`` (else from the code)."""
        divisions = []
        for r in rows:
            code = str(r["code"]).strip()
            level = (r.get("level") or _level_of_code(code) or "").strip()
            parent = r.get("parent_code")
            if parent is None and level != DISTRICT:
                parent = code[: {STREET: 6, COMMUNITY: 9}.get(level, 0)] or None
            divisions.append(Division(code, str(r["name"]).strip(), level, str(parent) if parent else None))
        return cls(divisions)

    @classmethod
    def from_csv(cls, path: str | Path, *, boundaries: str | Path | None = None) -> Gazetteer:
        """A divisions CSV/TSV (``code,name[,level,parent_code]``), plus optional GeoJSON boundaries."""
        text = read_text(path)
        delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
        gaz = cls.from_rows(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
        if boundaries is not None:
            gaz = gaz.with_boundaries(json.loads(Path(boundaries).read_text(encoding="utf-8")))
        return gaz

    @classmethod
    def from_units(cls, units: Iterable[Any], extra_names: Iterable[tuple[str, str]] = ()) -> Gazetteer:
        """Build from ``org.models.Unit`` rows (anything with id, code, name, tier, parent_id, boundary), with the
        address library's ``extra_names`` ((name, unit code) pairs).

        Only district / street / community tiers are used; a unit's parent is looked up among the given units.
        """
        units = list(units)
        code_by_id = {u.id: u.code for u in units}
        divisions = []
        for u in units:
            tier = getattr(u.tier, "value", u.tier)
            if tier not in _LEVEL_DEPTH:
                continue
            parent = code_by_id.get(u.parent_id) if u.parent_id is not None else None
            divisions.append(Division(u.code, u.name, tier, parent, getattr(u, "boundary", None)))
        return cls(divisions, extra_names)

    def with_boundaries(self, geojson: Mapping[str, Any]) -> Gazetteer:
        """A copy whose units take a FeatureCollection's boundaries (matched by code, adcode or name)."""
        by_key: dict[str, Mapping[str, Any]] = {}
        for f in geojson.get("features", []):
            props = f.get("properties") or {}
            for key in (props.get("code"), props.get("adcode"), props.get("name")):
                if key is not None:
                    by_key[str(key)] = f["geometry"]
        return Gazetteer(
            (
                Division(u.code, u.name, u.level, u.parent_code, by_key.get(u.code) or by_key.get(u.name) or u.boundary)
                for u in self.units.values()
            ),
            self.extra_names,
        )

    # lookup helpers --------------------------------------------------------------------------------------

    def chain_of(self, code: str) -> tuple[str | None, str | None, str | None]:
        """``(district, street, community)`` codes of a unit and its ancestors."""
        out: list[str | None] = [None, None, None]
        cur: str | None = code
        while cur is not None and cur in self.units:
            u = self.units[cur]
            out[_LEVEL_DEPTH[u.level]] = u.code
            cur = u.parent_code
        return (out[0], out[1], out[2])

    def _name(self, code: str | None) -> str | None:
        return self.units[code].name if code is not None and code in self.units else None

    def units_named(self, name: str, *, own: bool = False) -> dict[str, float]:
        """The units a name (normalised here) stands for exactly, by code, with its weight as evidence of each: a
        full name, a short form, a bare core or an address library's name; empty for a name of none. ``own``: by the
        divisions' own names only, not the ``extra_names``."""
        key = normalise(name)
        if own and key in self._own_of_extra:
            return dict(self._own_of_extra[key])
        return dict(self._aliases.get(key, {}))

    def district_code(self, hint: str) -> str | None:
        if hint in self.units and self.units[hint].level == DISTRICT:
            return hint
        norm = normalise(hint)
        for u in self.units.values():
            if u.level == DISTRICT and (normalise(u.name) == norm or normalise(u.name)[:-1] == norm):
                return u.code
        return None

    # text ------------------------------------------------------------------------------------------------

    def _scan(self, text: str) -> _Scan:
        scan = _Scan()
        found: list[_Mention] = []
        for end_idx, (key, cands, dropped) in self._automaton.iter(text):
            start = end_idx - len(key) + 1
            end = end_idx + 1
            if dropped:
                scan.dropped.append((start, end, dropped))
            if not cands:
                continue
            # Full and suffixed forms weigh at least W_DISTRICT_FULL; anything lighter is a bare core.
            bare = max(w for _, w in cands) < W_DISTRICT_FULL
            weak = False
            if bare:
                factor = 1.0
                if _road_follows(text, end):
                    factor *= ROAD_FACTOR
                if key in COMMON_WORDS:
                    factor *= COMMON_FACTOR
                if factor < 1.0:
                    weak = True
                    cands = tuple((c, w * factor) for c, w in cands)
            found.append(_Mention(start, end, key, cands, weak=weak))
        scan.mentions = _longest_first(found)
        if self._place_ends is not None:
            for hit in self._place_ends.finditer(text):
                end = hit.end()
                for length in self._place_lengths[hit.group()]:
                    if length > end:
                        break
                    name = text[end - length : end]
                    if name in self._places:
                        scan.places.append((end - length, end, name, self._places[name]))
        for hit in _CODED_PLACE.finditer(text):
            if hit.group() not in self._own_districts:
                scan.places.append((hit.start(), hit.end(), hit.group(), False))
        return scan

    def _fuzzy_mentions(
        self,
        text: str,
        taken: list[_Mention],
        dropped: list[tuple[int, int, _Cands]],
        context: set[str],
    ) -> list[_Mention]:
        covered = _Claimed(len(text))
        for m in taken:
            if max(w for _, w in m.cands) < W_DISTRICT_FULL:
                continue  # a bare core may be the start of a misspelt longer name (嘉和街 → 嘉禾街)
            covered.claim(m.start, m.end)
        # Units the text mentions in any way, a road's name included (长洲大道 → 长洲街道).
        mentioned = {code for m in taken for code, _ in m.cands}
        # Names the exact reading rests on, even inside a road's name: a typo may extend one (嘉和街 → 嘉禾街) but
        # not cut one in two (市桥大街 is 市桥's road, not 桥南街 misspelt).
        relied = [(m.start, m.end) for m in taken if any(code in context for code, _ in m.cands)]

        def cuts(start: int, end: int) -> bool:
            return any(a < end and start < b and not (start <= a and b <= end) for a, b in relied)

        # (start, length) → candidate code → weight, and whether a candidate came from a 2-character core.
        spans: dict[tuple[int, int], dict[str, float]] = {}
        core2: set[tuple[int, int]] = set()
        suffixed: set[tuple[int, int]] = set()  # spans some suffixed name's typo fits (not only a bare name's)
        starts = self._fuzzy_anchors.window_starts(text)
        for length in self._fuzzy_lengths:
            for start in sorted(starts.get(length, ())):
                if not covered.free(start, start + length):
                    continue
                span = text[start : start + length]
                for i in range(length):
                    key = span[:i] + "?" + span[i + 1 :]
                    for code, weight in self._fuzzy.get(key, {}).items():
                        cands = spans.setdefault((start, length), {})
                        cands[code] = max(weight, cands.get(code, 0.0))
                        if key in self._fuzzy_core2:
                            core2.add((start, length))
                        if key not in self._fuzzy_bare:
                            suffixed.add((start, length))
        for start, end, found in dropped:
            if not covered.free(start, end):
                continue
            cands = spans.setdefault((start, end - start), {})
            suffixed.add((start, end - start))
            for code, weight in found:
                cands[code] = max(weight, cands.get(code, 0.0))
        # Deepest context first: a typo'd community must lie in the named street, else in the named district.
        layers = sorted(context, key=len, reverse=True)
        hits: list[_Mention] = []
        for (start, length), cands in spans.items():
            if cuts(start, start + length):
                continue
            codes = list(cands)
            if (start, length) not in suffixed:
                # A bare name's typo counts only among the communities of the street the text names.
                named = [c for c in context if self.units[c].level == STREET]
                codes = [c for c in codes if named and self.chain_of(c)[1] == named[0]]
                if not codes:
                    continue
            if layers:
                for ctx in layers:
                    inside = [c for c in codes if ctx in self.chain_of(c)]
                    if inside:
                        codes = inside
                        break
                else:
                    continue  # contradicts what the text names exactly
            elif (start, length) in core2:
                codes = [c for c in codes if c in mentioned]
            # Among several names the typo fits, those the text mentions otherwise come first.
            codes = [c for c in codes if c in mentioned] or codes
            if not codes or len(codes) > MAX_TYPO_READINGS:
                continue
            streets = {self.chain_of(c)[1] for c in codes}
            street = streets.pop() if len(streets) == 1 else None
            if len(codes) > 1 and street is not None:
                # Communities of one street (望岗社区 for 望南 or 望北): the typo names that street, not an ambiguity.
                cands[street] = max(cands[c] for c in codes)
                codes = [street]
            span = text[start : start + length]
            hits.append(_Mention(start, start + length, span, tuple((c, cands[c] * FUZZY_FACTOR) for c in codes), True))
        return _longest_first(hits)

    def _elsewhere_first(
        self, text: str, places: list[tuple[int, int, str, bool]], mentions: list[_Mention]
    ) -> tuple[list[str], list[_Mention]]:
        """Names of places in another city that the text gives before any local name (none when it names a local
        city or district), and the local mentions left once those overlapping such names are dropped."""
        if any(home for *_, home in places):
            return [], mentions
        foreign = [
            (start, end, name)
            for start, end, name, _ in places
            # 中山市场 is a market, not 中山市
            if not (name.endswith("市") and text[end : end + 1] == "场")
        ]
        if not foreign:
            return [], mentions
        # A local name right after another city's (贵阳市白云区) is that city's namesake: the character after a
        # foreign name counts as that name's.
        abroad = _Claimed(len(text) + 1)
        for start, end, _ in foreign:
            abroad.claim(start, end + 1)
        local = [m for m in mentions if abroad.free(m.start, m.end)]
        named_district = any(
            w >= W_DISTRICT_FULL and self.units[c].level == DISTRICT for m in local for c, w in m.cands
        )
        first_local = min((m.start for m in local if not m.weak), default=len(text))
        if named_district or min(a for a, _, _ in foreign) > first_local:
            return [], local
        return [name for _, _, name in sorted(foreign)], local

    def resolve(self, text: str, *, district_hint: str | None = None) -> Location:
        """Resolve one free-text address to district / street / community."""
        loc = Location(input=text)
        norm = normalise(text)
        scan = self._scan(norm)
        elsewhere, mentions = self._elsewhere_first(norm, scan.places, scan.mentions)
        if elsewhere:
            loc.evidence = ["!" + name for name in elsewhere]
            return loc
        hint_code = self.district_code(district_hint) if district_hint else None
        chains = self._score(mentions, hint_code)
        best = chains[0] if chains else None
        if best is None or best[1][2] is None:
            # No community (or nothing) found exactly: try one-character typos around the exact evidence.
            context: set[str] = set()
            if best is not None:
                context = {c for c in best[1] if c is not None}
            elif hint_code:
                context = {hint_code}
            fuzzy = self._fuzzy_mentions(norm, mentions, scan.dropped, context)
            if fuzzy:
                mentions = _longest_first([*mentions, *fuzzy])
                chains = self._score(mentions, hint_code)
        loc.evidence = [("~" if m.fuzzy else "") + m.text for m in sorted(mentions, key=lambda m: m.start)]
        return self._decide(loc, chains, mentions)

    def _score(
        self, mentions: list[_Mention], hint: str | None
    ) -> list[tuple[float, tuple[str | None, str | None, str | None], bool]]:
        """Chains sorted best first: (score, (district, street, community), used a weak/fuzzy mention)."""
        raw: set[tuple[str | None, str | None, str | None]] = set()
        for m in mentions:
            for code, _ in m.cands:
                raw.add(self.chain_of(code))
        if hint:
            raw.add((hint, None, None))
        scored: dict[tuple[str | None, str | None, str | None], tuple[float, bool]] = {}
        for chain in raw:
            chain_t = chain
            while True:
                score, support, soft = self._evaluate(chain_t, mentions, hint)
                depth = max((d for d in range(3) if chain_t[d] is not None), default=-1)
                if depth >= 0 and support[depth]:
                    break
                # The deepest level has no mention of its own: fall back to the parent.
                if depth <= 0:
                    chain_t = (None, None, None)
                    break
                chain_t = tuple(c if i < depth else None for i, c in enumerate(chain_t))  # type: ignore[assignment]
            if chain_t == (None, None, None) or score < MIN_SCORE:
                continue
            scored[chain_t] = (score, soft)
        ordered = sorted(scored.items(), key=lambda kv: (-kv[1][0], -_depth(kv[0]), kv[0]))
        return [(s, c, soft) for c, (s, soft) in ordered]

    def _evaluate(
        self, chain: tuple[str | None, str | None, str | None], mentions: list[_Mention], hint: str | None
    ) -> tuple[float, list[bool], bool]:
        score = 0.0
        strong = [False, False, False]
        weak_at: list[list[float]] = [[], [], []]
        soft = False
        if hint and chain[0] == hint:
            score += W_HINT
            strong[0] = True
        for m in mentions:
            best_w, best_level = 0.0, -1
            for code, w in m.cands:
                if code in chain:
                    level = chain.index(code)
                    # Ties go to the shallower level: one mention cannot name both a street and its community.
                    if w > best_w or (w == best_w and level < best_level):
                        best_w, best_level = w, level
            if best_level < 0:
                continue
            score += best_w
            if m.weak or m.fuzzy:
                soft = True
            if best_w >= MIN_SUPPORT and not m.weak:
                strong[best_level] = True
            else:
                weak_at[best_level].append(best_w)
        # A road-embedded or common-word mention counts only under a parent that other evidence names.
        support = list(strong)
        for level in range(3):
            if not support[level] and weak_at[level] and level > 0 and support[level - 1]:
                support[level] = True
        # Ancestors of a supported level are implied by it.
        for level in (2, 1):
            if support[level]:
                support[level - 1] = support[level - 1] or chain[level - 1] is not None
        return score, support, soft

    def _decide(
        self,
        loc: Location,
        chains: list[tuple[float, tuple[str | None, str | None, str | None], bool]],
        mentions: list[_Mention],
    ) -> Location:
        loc.candidates = [self._candidate(c, s) for s, c, _ in chains[:5]]
        if not chains:
            loc.confidence = 0.0
            return loc
        best_score, best, soft = chains[0]
        depth = _depth(best)
        tied = [c for s, c, _ in chains if abs(s - best_score) < 1e-9 and _depth(c) == depth]
        if len(tied) == 1 and any(m.text in self._shared_extra for m in mentions):
            tied += [
                c
                for s, c, _ in chains
                if abs(s - best_score) < 1e-9 and not _is_prefix(c, best) and not _is_prefix(best, c)
            ]
        rivals = [s for s, c, _ in chains if c != best and not _is_prefix(c, best)]
        rival = max(rivals, default=0.0)
        strength = 1.0 - math.exp(-best_score / 3.0)
        if len(tied) > 1:
            common = tied[0]
            for c in tied[1:]:
                common = _common_prefix(common, c)
            self._fill(loc, common)
            loc.ambiguous = True
            loc.candidates = [self._candidate(c, best_score) for c in tied]
            loc.confidence = round(0.3 * strength, 3)
            return loc
        contradicted = self._contradiction(best, mentions)
        if contradicted is not None:
            # Two places named, each in full: report both, answer only what they agree on.
            self._fill(loc, _common_prefix(best, contradicted))
            loc.ambiguous = True
            loc.candidates = [self._candidate(c, s) for s, c, _ in chains if c in (best, contradicted)]
            loc.confidence = round(0.3 * strength, 3)
            return loc
        self._fill(loc, best)
        confidence = strength * (1.0 - 0.5 * min(1.0, rival / best_score))
        if soft:
            confidence *= 0.8
        if any(m.fuzzy for m in mentions):
            confidence *= 0.85
        loc.confidence = round(max(0.0, min(1.0, confidence)), 3)
        return loc

    def _contradiction(
        self, best: tuple[str | None, str | None, str | None], mentions: list[_Mention]
    ) -> tuple[str | None, str | None, str | None] | None:
        """The chain of a district or street the text names in full (exactly, not inside a road's name) that the
        best chain — deeper, led by a community or street of another one — contradicts; None when none does.

        A town named with a village now under a street of the same district is not a contradiction: streets are
        set up from towns' land (撤镇设街), and the villages' old addresses live on (太和镇大源村 → 大源街道)."""
        depth = _depth(best)
        # A best chain that rests on bare names only is contradicted by a bare district name too (黄埔中新知识城:
        # 黄埔 said, 中新 a town of 增城区).
        bare_best = all(
            w < W_DISTRICT_FULL for m in mentions for code, w in m.cands if code in best and not (m.weak or m.fuzzy)
        )
        for m in mentions:
            if m.weak or m.fuzzy or any(code in best for code, _ in m.cands):
                continue
            for code, weight in m.cands:
                unit = self.units[code]
                level = _LEVEL_DEPTH[unit.level]
                floor = (W_DISTRICT_BARE if bare_best else W_DISTRICT_FULL) if level == 0 else W_STREET_FULL
                if level >= depth - 1 or weight < floor:
                    continue
                chain = self.chain_of(code)
                if self._former_town(unit, chain, best):
                    continue
                return chain
        return None

    def _former_town(
        self, unit: Division, chain: tuple[str | None, str | None, str | None], best: tuple[str | None, ...]
    ) -> bool:
        """Whether ``unit`` is a town of ``best``'s district and ``best`` ends at a village of a street."""
        if unit.level != STREET or split_street(normalise(unit.name))[1] != "town" or best[2] is None:
            return False
        village = self.units.get(best[2])
        street = self.units.get(best[1]) if best[1] is not None else None
        return (
            chain[0] == best[0]
            and village is not None
            and split_community(normalise(village.name))[1] == "village"
            and street is not None
            and split_street(normalise(street.name))[1] == "street"
        )

    def _fill(self, loc: Location, chain: tuple[str | None, str | None, str | None]) -> None:
        loc.district_code, loc.street_code, loc.community_code = chain
        loc.district = self._name(chain[0])
        loc.street = self._name(chain[1])
        loc.community = self._name(chain[2])

    def _candidate(self, chain: tuple[str | None, str | None, str | None], score: float) -> Candidate:
        return Candidate(
            self._name(chain[0]),
            chain[0],
            self._name(chain[1]),
            chain[1],
            self._name(chain[2]),
            chain[2],
            round(score, 3),
        )

    # coordinates -----------------------------------------------------------------------------------------

    def resolve_point(self, lat: float, lng: float) -> Location:
        """The deepest unit whose boundary contains the point (GeoJSON order: lng, lat)."""
        loc = Location(input=f"{lat},{lng}")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
            raise ValidationFailed(f"not a coordinate: {lat},{lng}")
        hits: list[Division] = []
        for code, (x0, y0, x1, y1) in self._bbox.items():
            if x0 <= lng <= x1 and y0 <= lat <= y1:
                unit = self.units[code]
                if unit.boundary is not None and geometry_contains(unit.boundary, lng, lat):
                    hits.append(unit)
        if not hits:
            return loc
        deepest = max(hits, key=lambda u: _LEVEL_DEPTH[u.level])
        chain = self.chain_of(deepest.code)
        self._fill(loc, chain)
        # A point inside one boundary is certain up to the data's precision; overlapping outlines are not.
        same_level = [u for u in hits if u.level == deepest.level]
        loc.ambiguous = len(same_level) > 1
        loc.confidence = 0.5 if loc.ambiguous else 0.95
        loc.candidates = [self._candidate(self.chain_of(u.code), 1.0) for u in same_level]
        return loc


def _depth(chain: tuple[str | None, ...]) -> int:
    return sum(1 for c in chain if c is not None)


def _is_prefix(a: tuple[str | None, ...], b: tuple[str | None, ...]) -> bool:
    return all(x is None or x == y for x, y in zip(a, b, strict=True))


def _common_prefix(
    a: tuple[str | None, str | None, str | None], b: tuple[str | None, str | None, str | None]
) -> tuple[str | None, str | None, str | None]:
    out: list[str | None] = []
    for x, y in zip(a, b, strict=True):
        if x is None or x != y:
            break
        out.append(x)
    out += [None] * (3 - len(out))
    return (out[0], out[1], out[2])


class _Claimed:
    """The characters of a text that accepted spans hold.

    Asking whether a span is free, and claiming it, costs the span's length — not the number of spans accepted
    before: comparing each name found with every one taken made a long text quadratic (minutes for one
    180,000-character line, seconds for one long order)."""

    __slots__ = ("_held",)

    def __init__(self, length: int) -> None:
        self._held = bytearray(length)

    def free(self, start: int, end: int) -> bool:
        return self._held.find(1, start, end) < 0

    def claim(self, start: int, end: int) -> None:
        self._held[start:end] = b"\x01" * (end - start)


def _longest_first(found: list[_Mention]) -> list[_Mention]:
    """Non-overlapping mentions, preferring longer then stronger ones (a mention is never empty)."""
    found.sort(key=lambda m: (-(m.end - m.start), -max((w for _, w in m.cands), default=0.0), m.start))
    claimed = _Claimed(max((m.end for m in found), default=0))
    taken: list[_Mention] = []
    for m in found:
        if claimed.free(m.start, m.end):
            claimed.claim(m.start, m.end)
            taken.append(m)
    taken.sort(key=lambda m: m.start)
    return taken


@cache
def default_gazetteer() -> Gazetteer:
    """The packaged Guangzhou gazetteer: 11 districts, streets/towns, communities/villages, outlines."""
    data = resources.files("cityhub.nlp") / "data"
    with (
        resources.as_file(data / "guangzhou_units.tsv") as units,
        resources.as_file(data / "guangzhou_districts.geojson") as geo,
    ):
        return Gazetteer.from_csv(units, boundaries=geo)


def resolve(text: str, *, district_hint: str | None = None, gazetteer: Gazetteer | None = None) -> Location:
    """Resolve a free-text address with the given (default: packaged) gazetteer."""
    return (gazetteer or default_gazetteer()).resolve(text, district_hint=district_hint)


def resolve_point(lat: float, lng: float, *, gazetteer: Gazetteer | None = None) -> Location:
    """Resolve a GCJ-02 coordinate with the given (default: packaged) gazetteer."""
    return (gazetteer or default_gazetteer()).resolve_point(lat, lng)
