"""Build bench/data/addresses_heldout.csv: a third labelled address set, written without looking at the resolver.

    .venv/bin/python bench/make_address_set_heldout.py

The two older sets (``addresses_labelled.csv``, ``addresses_independent.csv`` + ``addresses_negative.csv``) were
looked at while the resolver was tuned, so they are development sets. This one was written from the real
divisions data only (``../shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv``, NBS codes), in
forms that real 12345 input takes, before the resolver's code or the older sets were read; its first figures are
the held-out ones (bench/README.md).

Columns as ``addresses_independent.csv``: form, text, street_code, community_code, ambiguous, candidates. The
expected answer comes from the data: the place the text names is looked up with only the context the text gives
(district, street, community, and whether it says 村 or 社区); when that leaves more than one street, the row is
ambiguous (no expected code, ``candidates`` lists the street codes, ``|``-separated). Rows whose form starts with
``negative`` name no Guangzhou place: nothing should be placed.

Seeded and deterministic: the same data gives the same file.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import opencc

ROOT = Path(__file__).resolve().parent.parent
DIVISIONS = ROOT.parent / "shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv"
GD_STREETS = ROOT.parent / "shared/data/china_admin_divisions/guangdong_streets_nbs_modood.csv"
CN_STREETS = ROOT.parent / "shared/data/china_admin_divisions/raw/modood/streets.csv"
CN_AREAS = ROOT.parent / "shared/data/china_admin_divisions/raw/modood/areas.csv"
CN_CITIES = ROOT.parent / "shared/data/china_admin_divisions/raw/modood/cities.csv"
OUT = ROOT / "bench/data/addresses_heldout.csv"
SEED = 3_12345
PER_FORM = 32

COMMUNITY_SUFFIX = re.compile(
    r"(社区居民委员会|社区居民居委会|社区居委委员会|社区居委会会|社区居委会|村民委员会|村委会|居民委员会|居委会|委委员会)$"
)
STREET_SUFFIX = re.compile(r"(街道办事处|街道|镇|乡)$")


@dataclass(frozen=True)
class District:
    code: str
    name: str
    core: str


@dataclass(frozen=True)
class Street:
    code: str
    name: str
    core: str
    district: str
    kind: str  # 街道 / 镇 / other


@dataclass(frozen=True)
class Community:
    code: str
    name: str
    core: str
    street: str
    village: bool  # 村委会 / 村民委员会


def load() -> tuple[dict[str, District], dict[str, Street], dict[str, Community]]:
    districts: dict[str, District] = {}
    streets: dict[str, Street] = {}
    communities: dict[str, Community] = {}
    with DIVISIONS.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            code, name, level = r["code"], r["name"], r["level"]
            if level == "district":
                districts[code] = District(code, name, name.removesuffix("区"))
            elif level == "street":
                kind = "街道" if name.endswith("街道") else "镇" if name.endswith("镇") else "other"
                streets[code] = Street(code, name, STREET_SUFFIX.sub("", name), r["parent_code"], kind)
            elif level == "community":
                village = name.endswith(("村委会", "村民委员会"))
                communities[code] = Community(code, name, COMMUNITY_SUFFIX.sub("", name), r["parent_code"], village)
    return districts, streets, communities


DISTRICTS, STREETS, COMMUNITIES = load()
STREETS_OF: dict[str, list[Street]] = defaultdict(list)
for _s in STREETS.values():
    STREETS_OF[_s.district].append(_s)
COMMUNITIES_OF: dict[str, list[Community]] = defaultdict(list)
for _c in COMMUNITIES.values():
    COMMUNITIES_OF[_c.street].append(_c)
# Every name a text could be read as naming: district, street and community cores of two or more characters.
ALL_CORES = (
    {d.core for d in DISTRICTS.values()}
    | {s.core for s in STREETS.values() if len(s.core) >= 2}
    | {c.core for c in COMMUNITIES.values() if len(c.core) >= 2}
)


def _other_meanings() -> set[str]:
    names = {d.core for d in DISTRICTS.values()}
    for path in (CN_CITIES, ROOT.parent / "shared/data/china_admin_divisions/raw/modood/provinces.csv"):
        with path.open(encoding="utf-8") as f:
            names |= {re.sub(r"(市|省|自治区|壮族|回族|维吾尔)+$", "", r["name"]) for r in csv.DictReader(f)}
    return names


# Bare names a reader takes for a district or a city before a street of the same name.
OTHER_MEANINGS = _other_meanings()
# Targets: real 街道/镇 (not the two reservoirs/forest farms) and communities with a usable core name.
TARGET_STREETS = {d: [s for s in STREETS_OF[d] if s.kind != "other"] for d in DISTRICTS}
DISTRICT_ORDER = sorted(DISTRICTS)


def usable(c: Community) -> bool:
    return len(c.core) >= 2 and "生活区" not in c.core and not c.core.endswith(("村", "社区"))


def clean(piece: str) -> bool:
    """True when ``piece`` (filler, house number, complaint) names no Guangzhou place by accident."""
    return not any(core in piece for core in ALL_CORES)


# ---------------------------------------------------------------- expected answers from the data


@dataclass
class Label:
    street_code: str
    community_code: str
    ambiguous: bool
    candidates: list[str]
    truth: tuple[str, str] = ("", "")


def label(
    district: str | None,
    street_core: str | None,
    community_core: str | None,
    village: bool | None,
    truth: tuple[str, str],
) -> Label | None:
    """The answer the text's context gives: the true place if that context picks it alone, else ambiguous.

    ``None`` when the context would pick another place than the truth (the sample is skipped: it would not
    test what the form means to test).
    """
    pairs: set[tuple[str, str]] = set()
    for s in STREETS.values():
        if district and s.district != district:
            continue
        if street_core and s.core != street_core:
            continue
        if community_core is None:
            pairs.add((s.code, ""))
            continue
        for c in COMMUNITIES_OF[s.code]:
            if c.core == community_core and (village is None or c.village == village):
                pairs.add((s.code, c.code))
    if truth not in pairs:
        return None
    streets = sorted({p[0] for p in pairs})
    if len(streets) == 1:
        if len(pairs) > 1:  # one street, two communities of that name: not a clean sample
            return None
        return Label(truth[0], truth[1], False, [])
    return Label("", "", True, streets, truth)


def written_kind(text: str, code: str) -> bool:
    """True when ``text`` names street ``code`` with its own kind (XX街/XX街道 for a 街道, XX镇 for a 镇)."""
    s = STREETS[code]
    return s.core + ("镇" if s.kind == "镇" else "街") in text


# ---------------------------------------------------------------- text pieces

COMPLAINTS = [
    "楼下烧烤档油烟很大，晚上十二点还在营业",
    "路灯坏了一个多星期都没人修",
    "井盖缺失，晚上经过很危险",
    "工地半夜还在施工，噪音吵得睡不着",
    "垃圾堆了三天没有清运，臭气熏天",
    "有人占道摆卖，行人没法走",
    "下水道堵塞，污水漫到路面上",
    "有人违章加建铁皮房",
    "流浪狗很多，小孩子上学害怕",
    "台风后树枝断了压在电线上",
    "停水两天了也没有通知",
    "共享单车乱停，把消防通道堵死了",
    "晚上跳舞的音响开得太大声",
    "一下雨就水浸，车都过不去",
    "电梯经常困人，物业不管",
    "无牌摩托车天天在门口飞驰",
    "隔壁厂房排放刺鼻气味",
    "门口那段路坑坑洼洼，老人摔倒了",
    "夜宵档的桌椅摆到马路上",
    "小区二次供水水质发黄",
]
SEPARATORS = ["", "", " ", "，", "/", "-", "　", "、"]


def house_number(rng: random.Random) -> str:
    n = rng.randint(1, 188)
    return rng.choice(
        [
            f"{n}号",
            f"{n}号{rng.randint(1, 12)}栋{rng.randint(1, 30)}0{rng.randint(1, 8)}房",
            f"{rng.randint(1, 30)}巷{n}号",
            f"大街{rng.randint(1, 20)}巷{rng.randint(1, 40)}号",
            f"后街{n}号",
            f"{n}号之{rng.randint(1, 6)}",
            f"{rng.randint(1, 9)}队{n}号",
        ]
    )


FULLWIDTH = str.maketrans("0123456789-,()/ ", "０１２３４５６７８９－，（）／　")


def to_fullwidth(text: str) -> str:
    return text.translate(FULLWIDTH)


def street_mention(rng: random.Random, s: Street) -> str:
    if s.kind == "镇":
        said = rng.choice([s.name, s.name, s.core])
    else:
        said = rng.choice([s.name, s.core + "街", s.core + "街", s.core])
    return bare_street(s) if said == s.core else said


def bare_street(s: Street) -> str:
    """A street's name without 街/镇, unless that bare name is a district's or a city's (白云, 南沙, 北京)."""
    if s.core in OTHER_MEANINGS:
        return s.core + ("镇" if s.kind == "镇" else "街")
    return s.core


def community_mention(rng: random.Random, c: Community) -> str:
    if c.village:
        return rng.choice([c.core + "村", c.core + "村", c.core + "村委", c.core + "村委会"])
    return rng.choice([c.core + "社区", c.core + "社区", c.core + "社区居委会", c.core + "居委"])


def district_mention(rng: random.Random, d: District) -> str:
    return rng.choice([d.name, d.name, "广州市" + d.name, "广州" + d.name, d.core])


@dataclass
class Pick:
    district: District
    street: Street
    community: Community | None


def pick(rng: random.Random, i: int, with_community: bool = True, village: bool | None = None) -> Pick:
    for shift in range(len(DISTRICT_ORDER)):  # urban districts have no villages: the next district then
        d = DISTRICTS[DISTRICT_ORDER[(i + shift) % len(DISTRICT_ORDER)]]
        if not with_community:
            return Pick(d, rng.choice(TARGET_STREETS[d.code]), None)
        options = [
            (s, c)
            for s in TARGET_STREETS[d.code]
            for c in COMMUNITIES_OF[s.code]
            if usable(c) and (village is None or c.village == village)
        ]
        if options:
            s = rng.choice(sorted({s for s, _ in options}, key=lambda s: s.code))
            return Pick(d, s, rng.choice([c for t, c in options if t == s]))
    raise LookupError(f"no community village={village}")


Row = dict[str, str]


def row(form: str, text: str, lab: Label) -> Row:
    if lab.ambiguous:  # 新塘街 is the 街道, 新塘镇 the 镇: a written kind that only the truth has decides
        kept = [code for code in lab.candidates if written_kind(text, code)]
        if kept == [lab.truth[0]]:
            lab = Label(lab.truth[0], lab.truth[1], False, [])
    return {
        "form": form,
        "text": text,
        "street_code": lab.street_code,
        "community_code": lab.community_code,
        "ambiguous": "1" if lab.ambiguous else "0",
        "candidates": "|".join(lab.candidates),
    }


# ---------------------------------------------------------------- forms (each returns a row or None to redraw)


def f_workorder_field(rng: random.Random, i: int) -> Row | None:
    """Operator-typed work-order address field: district, street, community, house number; varied separators."""
    p = pick(rng, i)
    assert p.community
    sep = rng.choice(SEPARATORS)
    hn = house_number(rng)
    if not clean(hn):
        return None
    city = rng.choice(["广州市", "", ""])
    text = sep.join([city + p.district.name, p.street.name, community_mention(rng, p.community)]) + hn
    lab = label(
        p.district.code, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code)
    )
    return row("workorder_field", text.strip(sep) if sep.strip() else text, lab) if lab else None


def f_citizen_sentence(rng: random.Random, i: int) -> Row | None:
    """A citizen's sentence with the place in the middle of it."""
    p = pick(rng, i)
    assert p.community
    complaint = rng.choice(COMPLAINTS)
    opener = rng.choice(["你好，我想反映一下，", "您好！", "投诉：", "我要投诉，", "你们好，", ""])
    where = district_mention(rng, p.district) + street_mention(rng, p.street) + community_mention(rng, p.community)
    tmpl = rng.choice(
        [
            "{o}我住在{w}，{c}，希望尽快处理。",
            "{o}{w}这里{c}，麻烦派人来看看。",
            "{o}我家在{w}，最近{c}，打了几次电话都没用。",
            "{o}{c}，地点是{w}，谢谢。",
        ]
    )
    lab = label(
        p.district.code, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code)
    )
    return row("citizen_sentence", tmpl.format(o=opener, w=where, c=complaint), lab) if lab else None


def f_spoken(rng: random.Random, i: int) -> Row | None:
    """Spoken style from the hotline transcript: 在XX这边, XX附近, 嗰边; often no district."""
    p = pick(rng, i)
    assert p.community
    with_district = rng.random() < 0.5
    d = p.district.core + "区" if with_district else ""
    place = p.community.core + ("村" if p.community.village else rng.choice(["社区", "", "小区"]))
    tmpl = rng.choice(
        [
            "就在{d}{s}那边，{p}附近，{c}",
            "我在{d}{s}{p}这边啊，{c}",
            "呃，{d}{s}，{p}那里，就是那个路口，{c}",
            "我哋喺{d}{s}{p}嗰边，{c}",
            "{c}，位置大概在{d}{s}{p}附近",
        ]
    )
    text = tmpl.format(d=d, s=bare_street(p.street), p=place, c=rng.choice(COMPLAINTS))
    lab = label(
        p.district.code if with_district else None,
        p.street.core,
        p.community.core,
        p.community.village,
        (p.street.code, p.community.code),
    )
    return row("spoken", text, lab) if lab else None


NICKNAMES = [
    # (nickname, district code, street name) — places every Guangzhou citizen names this way
    ("大学城", "440113", "小谷围街道"),
    ("广州大学城", "440113", "小谷围街道"),
    ("二沙岛", "440104", "白云街道"),
    ("生物岛", "440105", "官洲街道"),
    ("中新知识城", "440112", "九佛街道"),
    ("北京路步行街", "440104", "北京街道"),
    ("沙面岛", "440103", "沙面街道"),
    ("琶洲会展中心", "440105", "琶洲街道"),
]


def f_abbreviation(rng: random.Random, i: int) -> Row | None:
    """Abbreviations: district without 区, street without 街道/镇, 村/社区 dropped; a few common nicknames."""
    if i % 4 == 0:
        nick, dcode, sname = NICKNAMES[(i // 4) % len(NICKNAMES)]
        s = next(s for s in STREETS_OF[dcode] if s.name == sname)
        d = DISTRICTS[dcode]
        text = rng.choice(["{n}{h}", "{d}{n}{h}", "{n}那边{c}"]).format(
            n=nick, d=d.core, h=house_number(rng), c=rng.choice(COMPLAINTS)
        )
        named = [c for c in COMMUNITIES.values() if c.core == nick]  # the data wins over a nickname (二沙岛)
        if len(named) == 1:
            return row("abbreviation_nickname", text, Label(named[0].street, named[0].code, False, []))
        return row("abbreviation_nickname", text, Label(s.code, "", False, []))
    p = pick(rng, i)
    assert p.community
    text = p.district.core + p.street.core + p.community.core + house_number(rng)
    lab = label(p.district.code, p.street.core, p.community.core, None, (p.street.code, p.community.code))
    return row("abbreviation", text, lab) if lab else None


def f_width_spaces(rng: random.Random, i: int) -> Row | None:
    """Full-width digits and punctuation, ideographic and doubled spaces, spaces inside names."""
    p = pick(rng, i)
    assert p.community
    hn = house_number(rng)
    parts = [p.district.name, p.street.name, community_mention(rng, p.community), hn]
    style = i % 3
    if style == 0:
        text = to_fullwidth(" ".join(parts))
    elif style == 1:
        text = "  ".join(parts[:3]) + " （" + to_fullwidth(hn) + "）"
    else:
        text = " ".join(" ".join(parts[1])) + " " + " ".join(parts[2]) + " " + hn
        lab = label(None, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code))
        return row("width_spaces", text, lab) if lab else None
    lab = label(
        p.district.code, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code)
    )
    return row("width_spaces", text, lab) if lab else None


OLD_DISTRICTS = {
    # old district → (current district, streets of it that lay in the old one)
    "萝岗区": ("440112", ["萝岗街道", "夏港街道", "东区街道", "联和街道", "永和街道"]),
    "芳村区": ("440103", ["白鹤洞街道", "冲口街道", "花地街道", "石围塘街道", "茶滘街道", "东漖街道"]),
    "东山区": ("440104", ["农林街道", "梅花村街道", "黄花岗街道", "华乐街道", "大塘街道", "珠光街道", "东山街道"]),
    "从化市": ("440117", []),
    "增城市": ("440118", []),
    "番禺市": ("440113", []),
    "花都市": ("440114", []),
}


def f_old_name(rng: random.Random, i: int) -> Row | None:
    """Older names: a district that has since been merged or renamed (萝岗区, 芳村, 东山区, 从化市, 增城市 …)."""
    old = sorted(OLD_DISTRICTS)[i % len(OLD_DISTRICTS)]
    dcode, names = OLD_DISTRICTS[old]
    choices = [s for s in TARGET_STREETS[dcode] if not names or s.name in names]
    s = rng.choice(choices)
    cs = [c for c in COMMUNITIES_OF[s.code] if usable(c)]
    if not cs:
        return None
    c = rng.choice(cs)
    old_text = rng.choice([old, old, old.removesuffix("区").removesuffix("市")])
    text = (
        "广州市" * rng.randint(0, 1) + old_text + street_mention(rng, s) + community_mention(rng, c) + house_number(rng)
    )
    lab = label(dcode, s.core, c.core, c.village, (s.code, c.code))
    return row("old_name", text, lab) if lab else None


def f_district_community(rng: random.Random, i: int) -> Row | None:
    """District and community without the street (the street is the community's, unless the name is shared)."""
    p = pick(rng, i)
    assert p.community
    text = district_mention(rng, p.district) + community_mention(rng, p.community) + house_number(rng)
    lab = label(p.district.code, None, p.community.core, p.community.village, (p.street.code, p.community.code))
    return row("district_community", text, lab) if lab else None


def f_community_only(rng: random.Random, i: int) -> Row | None:
    """Only the community, as a citizen says it: unique names place; shared ones are ambiguous."""
    p = pick(rng, i)
    assert p.community
    text = rng.choice(["{p}{h}", "我是{p}的居民，{c}", "{c}（{p}）"]).format(
        p=community_mention(rng, p.community), h=house_number(rng), c=rng.choice(COMPLAINTS)
    )
    lab = label(None, None, p.community.core, p.community.village, (p.street.code, p.community.code))
    return row("community_only", text, lab) if lab else None


def f_street_named_after_community(rng: random.Random, i: int) -> Row | None:
    """The community that gives its street its name (沙湾街道沙湾社区): written once or twice."""
    d = DISTRICTS[DISTRICT_ORDER[i % len(DISTRICT_ORDER)]]
    pairs = [(s, c) for s in TARGET_STREETS[d.code] for c in COMMUNITIES_OF[s.code] if c.core == s.core and usable(c)]
    if not pairs:
        return None
    s, c = rng.choice(pairs)
    if rng.random() < 0.5:
        text = d.name + street_mention(rng, s) + community_mention(rng, c) + house_number(rng)
        lab = label(d.code, s.core, c.core, c.village, (s.code, c.code))
    else:
        text = d.name + community_mention(rng, c) + house_number(rng)
        lab = label(d.code, None, c.core, c.village, (s.code, c.code))
    return row("street_named_after_community", text, lab) if lab else None


def f_village_forms(rng: random.Random, i: int) -> Row | None:
    """村 written as 村委/村委会/村民委员会/经济联社/经济合作社."""
    p = pick(rng, i, village=True)
    assert p.community
    core = p.community.core
    written = rng.choice(
        [
            core + "村委",
            core + "村委会",
            core + "村民委员会",
            core + "经济联社",
            core + "村经济联合社",
            core + "股份合作经济联社",
        ]
    )
    text = p.district.name + street_mention(rng, p.street) + written + rng.choice(["", "门口", "旁边"])
    lab = label(p.district.code, p.street.core, core, True, (p.street.code, p.community.code))
    return row("village_forms", text, lab) if lab else None


def f_shequ_forms(rng: random.Random, i: int) -> Row | None:
    """社区 written as 社区居委会/居委会/居委/社区居民委员会/社区服务中心."""
    p = pick(rng, i, village=False)
    assert p.community
    core = p.community.core
    written = rng.choice(
        [core + "社区居委会", core + "居委会", core + "居委", core + "社区居民委员会", core + "社区服务站"]
    )
    text = p.district.name + street_mention(rng, p.street) + written + rng.choice(["", "楼下", "对面"])
    lab = label(p.district.code, p.street.core, core, False, (p.street.code, p.community.code))
    return row("shequ_forms", text, lab) if lab else None


HOMOPHONES = {
    "岗": "港",
    "港": "岗",
    "塘": "堂",
    "洲": "州",
    "涌": "永",
    "埔": "浦",
    "滘": "教",
    "漖": "教",
    "苑": "院",
    "园": "元",
    "元": "园",
    "源": "园",
    "岭": "领",
    "湖": "胡",
    "龙": "隆",
    "隆": "龙",
    "庄": "装",
    "溪": "西",
    "桥": "乔",
    "和": "禾",
    "禾": "和",
    "珠": "朱",
    "汇": "会",
    "秀": "绣",
    "星": "兴",
    "兴": "星",
    "景": "井",
    "井": "景",
    "福": "富",
    "富": "福",
    "丰": "峰",
    "峰": "丰",
    "民": "明",
    "联": "连",
    "永": "勇",
    "泰": "太",
    "鹤": "贺",
    "潭": "谭",
    "塱": "朗",
    "红": "洪",
    "洪": "红",
    "坭": "泥",
    "沥": "力",
    "罗": "萝",
    "萝": "罗",
    "梅": "美",
    "宝": "保",
    "锦": "金",
    "雅": "亚",
    "穗": "岁",
    "官": "关",
    "阳": "洋",
    "凤": "奉",
    "华": "桦",
    "石": "实",
    "沙": "莎",
    "江": "姜",
    "新": "欣",
    "东": "冬",
    "南": "楠",
    "黄": "皇",
    "田": "甜",
}
SHAPES = {
    "大": "太",
    "太": "大",
    "天": "夫",
    "石": "右",
    "田": "由",
    "白": "自",
    "王": "玉",
    "人": "入",
    "洲": "州",
    "埔": "浦",
    "滘": "窖",
    "塱": "朗",
    "沥": "历",
    "坭": "泥",
    "湾": "弯",
    "苑": "宛",
    "园": "圆",
    "岗": "冈",
    "塘": "溏",
    "漖": "教",
    "坑": "炕",
    "江": "汪",
    "沙": "砂",
    "云": "去",
    "元": "无",
    "东": "车",
    "马": "乌",
    "龙": "尤",
    "凤": "风",
    "贝": "见",
    "金": "全",
    "新": "亲",
    "杨": "扬",
    "场": "扬",
    "林": "材",
    "棠": "堂",
    "冼": "洗",
    "榄": "揽",
    "碁": "棋",
    "岭": "龄",
    "鳌": "熬",
    "狮": "师",
    "潭": "谭",
    "村": "材",
}


def typo(rng: random.Random, core: str, table: dict[str, str]) -> str | None:
    spots = [k for k, ch in enumerate(core) if ch in table]
    if not spots:
        return None
    k = rng.choice(spots)
    wrong = core[:k] + table[core[k]] + core[k + 1 :]
    # A typo that spells another real place is not a typo any resolver could see.
    if any(wrong in other or other == wrong for other in ALL_CORES):
        return None
    return wrong


def make_typo_form(form: str, table: dict[str, str]) -> Callable[[random.Random, int], Row | None]:
    def f(rng: random.Random, i: int) -> Row | None:
        p = pick(rng, i)
        assert p.community
        if i % 2 == 0:  # the community mistyped, district and street right
            wrong = typo(rng, p.community.core, table)
            if wrong is None or len(p.community.core) < 2:
                return None
            com = ("村" if p.community.village else "社区") if len(wrong) < 3 or rng.random() < 0.8 else ""
            text = p.district.name + street_mention(rng, p.street) + wrong + com + house_number(rng)
        else:  # the street mistyped, district and community right
            if len(p.street.core) < 2:
                return None
            wrong = typo(rng, p.street.core, table)
            if wrong is None:
                return None
            suffix = "镇" if p.street.kind == "镇" else "街"
            text = p.district.name + wrong + suffix + community_mention(rng, p.community) + house_number(rng)
        lab = label(
            p.district.code, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code)
        )
        return row(form, text, lab) if lab else None

    return f


S2T = opencc.OpenCC("s2t")
S2HK = opencc.OpenCC("s2hk")


def f_traditional(rng: random.Random, i: int) -> Row | None:
    """Traditional characters (Hong Kong or Taiwan style), whole text or only the place names."""
    p = pick(rng, i)
    assert p.community
    plain = district_mention(rng, p.district) + street_mention(rng, p.street) + community_mention(rng, p.community)
    conv = S2HK if i % 2 else S2T
    if i % 3 == 0:
        text = conv.convert(plain + "，" + rng.choice(COMPLAINTS))
    else:
        text = conv.convert(plain) + house_number(rng)
    lab = label(
        p.district.code, p.street.core, p.community.core, p.community.village, (p.street.code, p.community.code)
    )
    return row("traditional", text, lab) if lab else None


def f_street_only(rng: random.Random, i: int) -> Row | None:
    """Street with a road and number, no community (community expected empty); district sometimes left out."""
    p = pick(rng, i, with_community=False)
    with_district = i % 2 == 0
    hn = house_number(rng)
    text = (district_mention(rng, p.district) if with_district else "") + street_mention(rng, p.street) + hn
    lab = label(p.district.code if with_district else None, p.street.core, None, None, (p.street.code, ""))
    return row("street_only", text, lab) if lab else None


# ---------------------------------------------------------------- negatives


def other_places() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(city, district, street) outside Guangzhou: Guangdong's other cities, and other provinces' big cities."""
    gd = []
    with GD_STREETS.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["cityName"] != "广州市" and r["areaName"] not in ("市辖区",):
                gd.append((r["cityName"], r["areaName"], r["name"]))
    cities = {r["code"]: r["name"] for r in csv.DictReader(CN_CITIES.open(encoding="utf-8"))}
    areas = {r["code"]: r["name"] for r in csv.DictReader(CN_AREAS.open(encoding="utf-8"))}
    wanted = {"1101", "3101", "5001", "4201", "3301", "3201", "5101", "4501", "3501", "4301"}
    far = []
    with CN_STREETS.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["cityCode"] in wanted and r["areaCode"] in areas:
                city = cities.get(r["cityCode"], "")
                city = "" if city in ("市辖区", "县") else city
                if r["cityCode"] in ("1101", "3101", "5001"):
                    city = {"1101": "北京市", "3101": "上海市", "5001": "重庆市"}[r["cityCode"]]
                far.append((city, areas[r["areaCode"]], r["name"]))
    return sorted(gd), sorted(far)


NO_PLACE = [
    "我家楼上天天装修，周末早上七点就开始电钻",
    "小区门口的垃圾桶满了没人倒",
    "公交车司机态度很差，还急刹车",
    "我想咨询一下社保卡怎么补办",
    "请问新生儿入户需要什么材料",
    "网上买的东西质量有问题，商家不退款",
    "物业乱收停车费，问他们要收据也不给",
    "我要投诉一个外卖员骑车撞了我不赔钱",
    "请问公积金提取要多久到账",
    "燃气费这个月突然多了两百块",
    "学校门口早上接送孩子的车太乱了",
    "楼道里堆满了杂物，消防隐患很大",
]


def negatives(rng: random.Random) -> list[Row]:
    gd, far = other_places()
    gz_cores = ALL_CORES
    none = Label("", "", False, [])
    rows: list[Row] = []

    def core_of(street: str) -> str:
        return STREET_SUFFIX.sub("", street)

    distinct = [p for p in gd if core_of(p[2]) not in gz_cores and not any(c in p[2] for c in gz_cores)]
    shared = [p for p in gd if core_of(p[2]) in gz_cores]
    for _ in range(24):
        city, area, street = rng.choice(distinct)
        text = rng.choice(["{c}{a}{s}{h}", "我在{c}{a}{s}，{x}", "{a}{s}{h}"]).format(
            c=city, a=area, s=street, h=house_number(rng), x=rng.choice(COMPLAINTS)
        )
        if not clean(text.replace(street, "").replace(area, "").replace(city, "")) or any(c in text for c in gz_cores):
            continue
        rows.append(row("negative_other_city", text, none))
    for _ in range(16):
        city, area, street = rng.choice(shared)
        text = rng.choice(["{c}{a}{s}{h}", "我在{c}{a}{s}，{x}"]).format(
            c=city, a=area, s=street, h=house_number(rng), x=rng.choice(COMPLAINTS)
        )
        rows.append(row("negative_other_city_shared_name", text, none))
    for _ in range(20):
        city, area, street = rng.choice(far)
        text = rng.choice(["{c}{a}{s}{h}", "{c}{a}{s}，{x}"]).format(
            c=city, a=area, s=street, h=house_number(rng), x=rng.choice(COMPLAINTS)
        )
        if any(c in text for c in gz_cores):
            continue
        rows.append(row("negative_other_province", text, none))
    for text in NO_PLACE:
        if clean(text):
            rows.append(row("negative_no_place", text, none))
    return rows


SHARED_COMMUNITIES = sorted(
    {
        c.core
        for c in COMMUNITIES.values()
        if usable(c) and len({d.street for d in COMMUNITIES.values() if d.core == c.core}) > 1
    }
)
SHARED_STREETS = sorted({s.core for s in STREETS.values() if sum(t.core == s.core for t in STREETS.values()) > 1})


def f_shared_name(rng: random.Random, i: int) -> Row | None:
    """A name more than one place has: ambiguous without context, placed when district or street decides."""
    if i % 4 == 3 and SHARED_STREETS:
        core = SHARED_STREETS[(i // 4) % len(SHARED_STREETS)]
        s = rng.choice(sorted((t for t in STREETS.values() if t.core == core), key=lambda t: t.code))
        with_district = rng.random() < 0.5
        d = DISTRICTS[s.district]
        text = (d.name if with_district else "") + street_mention(rng, s) + house_number(rng)
        lab = label(d.code if with_district else None, core, None, None, (s.code, ""))
        return row("shared_name", text, lab) if lab else None
    core = SHARED_COMMUNITIES[rng.randrange(len(SHARED_COMMUNITIES))]
    c = rng.choice(sorted((c for c in COMMUNITIES.values() if c.core == core), key=lambda c: c.code))
    s = STREETS[c.street]
    d = DISTRICTS[s.district]
    context = i % 3  # 0: the name alone, 1: with its district, 2: with its street
    where = ["", d.name, street_mention(rng, s)][context]
    text = rng.choice(["{w}{c}{h}", "我住{w}{c}，{x}"]).format(
        w=where, c=community_mention(rng, c), h=house_number(rng), x=rng.choice(COMPLAINTS)
    )
    lab = label(
        d.code if context == 1 else None,
        s.core if context == 2 else None,
        core,
        c.village,
        (s.code, c.code),
    )
    return row("shared_name", text, lab) if lab else None


FORMS = [
    f_workorder_field,
    f_citizen_sentence,
    f_spoken,
    f_abbreviation,
    f_width_spaces,
    f_old_name,
    f_district_community,
    f_community_only,
    f_street_named_after_community,
    f_village_forms,
    f_shequ_forms,
    make_typo_form("typo_homophone", HOMOPHONES),
    make_typo_form("typo_shape", SHAPES),
    f_traditional,
    f_street_only,
    f_shared_name,
]


def build() -> list[Row]:
    rng = random.Random(SEED)
    rows: list[Row] = []
    seen: set[str] = set()
    for form in FORMS:
        made, i, tries = 0, 0, 0
        while made < PER_FORM and tries < PER_FORM * 40:
            tries += 1
            r = form(rng, i)
            i += 1
            if r is None or r["text"] in seen:
                continue
            seen.add(r["text"])
            rows.append(r)
            made += 1
    for r in negatives(rng):
        if r["text"] not in seen:
            seen.add(r["text"])
            rows.append(r)
    return rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["form", "text", "street_code", "community_code", "ambiguous", "candidates"])
        w.writeheader()
        w.writerows(rows)
    forms: dict[str, int] = defaultdict(int)
    for r in rows:
        forms[r["form"]] += 1
    amb = sum(r["ambiguous"] == "1" for r in rows)
    print(f"{len(rows)} rows ({amb} ambiguous) → {OUT.relative_to(ROOT)}")
    for k, v in sorted(forms.items()):
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
