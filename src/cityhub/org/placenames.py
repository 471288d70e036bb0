"""The parts of a unit's Chinese name: its short name, and its English name in the standard romanisation.

A division's name is a proper name followed by a generic word (三元里 + 街道, 望岗 + 社区居委会, 大源 + 村委会).
:func:`derive_short_name` keeps the proper name and a short generic (望岗社区); :func:`romanised` writes the name as
China's place names are written in English: the proper name in Hanyu Pinyin without tones, its syllables joined into
one capitalised word — with Pinyin's dividing mark before a syllable beginning with a, o or e (Fei'e, as Xi'an) —
and the generic word translated: 望岗社区居委会 → Wanggang Community, 大源村委会 → Dayuan Village, 三元里街道
→ Sanyuanli Subdistrict, 太和镇 → Taihe Town, 白云区 → Baiyun District (the bundled Baiyun divisions' English names
are written so).

Polyphonic characters are read as pypinyin's phrase dictionary reads them in their word (长沙 Changsha, 番禺 Panyu,
车陂 Chebei); a character read otherwise in a local name the dictionary does not know comes out in its common
reading. :data:`PLACE_READINGS` corrects the two such readings that recur in Guangdong's
names: 涌 (a stream), chong — 沙涌 Shachong, not Shayong — and 圩 (a market), xu — 沙圩 Shaxu, not Shawei.

A department's or a sub-centre's name is a description to translate, not a place to romanise: :func:`romanised`
gives none (an administrator names those in English, ``name_en``).
"""

from __future__ import annotations

import re

from cityhub.org.models import UnitTier

# NBS names carry typos such as 社区居委会会 / 社区居居委会; the optional repeats absorb them.
RESIDENTS_COMMITTEE = re.compile(r"^(?P<base>.+?)(?:社区)?(?:居民委员会|居+委会+)$")
VILLAGERS_COMMITTEE = re.compile(r"^(?P<base>.+?)(?:村民委员会|村委会+)$")
_PLAIN_SUFFIXES = ("街道办事处", "街道", "镇", "乡", "区", "县", "市")

# The generic words of a place's name and their English, longest first; a stem of one character is a name of its
# own (沙市, 南村), not a stem plus a generic word.
GENERIC_WORDS: tuple[tuple[str, str], ...] = (
    ("街道办事处", "Subdistrict"),
    ("街道", "Subdistrict"),
    ("社区", "Community"),
    ("村", "Village"),
    ("镇", "Town"),
    ("乡", "Township"),
    ("区", "District"),
    ("县", "County"),
    ("市", "City"),
)
# 街 alone ends many names that are no street's (龙归街社区 is a community): a subdistrict only for a street's unit.
STREET_ONLY_WORDS: tuple[tuple[str, str], ...] = (("街", "Subdistrict"),)

# The tiers whose names are places' names (romanised); a department's or sub-centre's is not.
PLACE_TIERS = frozenset({UnitTier.CITY, UnitTier.DISTRICT, UnitTier.STREET, UnitTier.COMMUNITY})

# A character whose reading in Guangdong's place names is not its common one, where the phrase dictionary does not
# know the name: 涌, a stream, reads chōng there (东涌 Dongchong, 沙涌 Shachong), 圩, a market, xū (沙圩 Shaxu). The
# same characters read yǒng and wéi in names elsewhere (涌泉, a polder's 圩): the product serves Guangzhou's districts.
PLACE_READINGS = {"涌": "chong", "圩": "xu"}

_HANZI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")  # hanzi, or other text


def derive_short_name(name: str) -> str:
    """Short name: 三元里街道→三元里, 望岗社区居委会→望岗社区, 大源村委会→大源村."""
    name = name.strip()
    match = RESIDENTS_COMMITTEE.match(name)
    if match:
        return match["base"] + "社区"
    match = VILLAGERS_COMMITTEE.match(name)
    if match:
        return match["base"] + "村"
    for suffix in _PLAIN_SUFFIXES:
        # One-character stems (e.g. 沙市) are names of their own, not a stem plus a suffix.
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def split_generic(name: str, tier: UnitTier | None = None) -> tuple[str, str]:
    """A place's name as its proper name and the English of its generic word ("" when it has none):
    望岗社区居委会 → (望岗, Community), 南村村委会 → (南村, Village), 沙市 → (沙市, "")."""
    name = name.strip()
    match = RESIDENTS_COMMITTEE.match(name)
    if match:
        return match["base"], "Community"
    match = VILLAGERS_COMMITTEE.match(name)
    if match:
        return match["base"], "Village"
    words = GENERIC_WORDS + (STREET_ONLY_WORDS if tier == UnitTier.STREET else ())
    for word, english in words:
        if name.endswith(word) and len(name) - len(word) >= 2:
            return name[: -len(word)], english
    return name, ""


def pinyin_word(text: str) -> str:
    """Chinese text as one capitalised word of toneless pinyin (望岗 → Wanggang, 飞鹅新村 → Fei'exincun); other
    characters (letters, digits) as they are."""
    from pypinyin import Style, lazy_pinyin  # ~55 MB of dictionaries: loaded by the first name romanised

    word, after_syllable = "", False
    for run in _RUNS.findall(text):
        if not _HANZI.match(run):
            word, after_syllable = word + run, False
            continue
        read = lazy_pinyin(run, style=Style.NORMAL, v_to_u=True)  # a hanzi's syllable as read in its word
        if len(read) == len(run):
            read = [PLACE_READINGS.get(char, syllable) for char, syllable in zip(run, read, strict=True)]
        for syllable in read:
            if after_syllable and syllable[:1] in ("a", "o", "e"):
                word += "'"  # Xi'an, not Xian
            word, after_syllable = word + syllable, True
    return word[:1].upper() + word[1:]


def romanised(name: str, tier: UnitTier | None = None) -> str | None:
    """A place's name in the standard romanisation (望岗社区居委会 → Wanggang Community); None for a unit that is not
    a place (a department, a sub-centre: ``tier`` outside :data:`PLACE_TIERS`) or a name without Chinese."""
    if tier is not None and tier not in PLACE_TIERS:
        return None
    if not _HANZI.search(name):
        return None
    proper, generic = split_generic(name, tier)
    return f"{pinyin_word(proper)} {generic}" if generic else pinyin_word(proper)
