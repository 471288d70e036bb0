"""The demo district's facts and the phrase book the generator writes orders from.

Everything here is invented for the demo (templates, road and estate names, people) except the names and codes
of Baiyun's streets and communities, which are public facts (``data/baiyun_divisions.csv``, NBS codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from random import Random

from cityhub.org.service import BAIYUN_DIVISIONS, BAIYUN_UNITS, derive_short_name, read_csv_table
from cityhub.workorders.models import AppealType as A
from cityhub.workorders.models import Channel as C

DISTRICT_CODE = "440111"
DISTRICT_NAME = "白云区"
# Rough bounding box of the district (WGS-84-ish); every generated point stays inside it.
LAT_RANGE = (23.14, 23.45)
LNG_RANGE = (113.15, 113.50)

# Approximate centre of each street/town, from general knowledge of the map (no street polygons exist in
# the project's data); communities are spread around it.
STREET_ANCHORS: dict[str, tuple[float, float, float]] = {
    # code: (lat, lng, radius in degrees)
    "440111002": (23.168, 113.262, 0.010),  # 三元里
    "440111003": (23.175, 113.236, 0.012),  # 松洲
    "440111004": (23.176, 113.282, 0.009),  # 景泰
    "440111005": (23.196, 113.246, 0.012),  # 同德
    "440111006": (23.208, 113.283, 0.012),  # 黄石
    "440111007": (23.183, 113.265, 0.009),  # 棠景
    "440111008": (23.192, 113.272, 0.009),  # 新市
    "440111009": (23.212, 113.322, 0.015),  # 同和
    "440111010": (23.190, 113.318, 0.012),  # 京溪
    "440111011": (23.222, 113.305, 0.012),  # 永平
    "440111012": (23.224, 113.282, 0.012),  # 嘉禾
    "440111013": (23.241, 113.272, 0.013),  # 均禾
    "440111014": (23.212, 113.228, 0.015),  # 石井
    "440111015": (23.168, 113.218, 0.010),  # 金沙
    "440111016": (23.198, 113.268, 0.009),  # 云城
    "440111017": (23.238, 113.292, 0.012),  # 鹤龙
    "440111018": (23.243, 113.240, 0.015),  # 白云湖
    "440111019": (23.255, 113.210, 0.016),  # 石门
    "440111020": (23.270, 113.300, 0.018),  # 龙归
    "440111021": (23.275, 113.360, 0.022),  # 大源
    "440111103": (23.335, 113.283, 0.030),  # 人和镇
    "440111107": (23.335, 113.370, 0.035),  # 太和镇
    "440111108": (23.400, 113.420, 0.035),  # 钟落潭镇
    "440111113": (23.310, 113.220, 0.030),  # 江高镇
}

# Spring Festival (春节) dates: wage-arrears appeals pile up in the weeks before it.
SPRING_FESTIVAL = {
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}


# --- the district's units ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Community:
    code: str
    name: str  # official, e.g. 望岗社区居委会
    short: str  # as written in an address, e.g. 望岗社区 / 夏茅村
    street_code: str
    is_village: bool
    lat: float
    lng: float


@dataclass(frozen=True)
class Street:
    code: str
    name: str  # 嘉禾街道 / 人和镇
    short: str  # 嘉禾街 / 人和镇
    lat: float
    lng: float
    radius: float
    communities: tuple[Community, ...] = field(default=())


@dataclass(frozen=True)
class OrgUnit:
    code: str
    name: str
    short_name: str


# Scenario handlers name departments by role; the codes are those of the bundled organisation
# (cityhub/org/data/baiyun_units.csv), so generated records need no database to say who handles them.
DEPT_CODES: dict[str, str] = {
    "housing": "440111-D01",
    "urban": "440111-D02",
    "env": "440111-D03",
    "water": "440111-D04",
    "transport": "440111-D05",
    "education": "440111-D06",
    "health": "440111-D07",
    "hrss": "440111-D08",
    "market": "440111-D09",
    "police": "440111-D10",
    "traffic": "440111-D11",
    "civil": "440111-D12",
    "planning": "440111-D13",
    "emergency": "440111-D14",
    "culture": "440111-D15",
    "agri": "440111-D16",
    "forestry": "440111-D17",
    "medins": "440111-D18",
    "fire": "440111-D19",
    "commerce": "440111-D20",
    "power": "440111-E01",
    "water_supply": "440111-E02",
    "gas": "440111-E03",
}


def _short_street(name: str) -> str:
    return name[:-1] if name.endswith("街道") else name


@lru_cache(maxsize=1)
def org_units() -> dict[str, OrgUnit]:
    """The bundled departments, enterprises and sub-centre by code."""
    return {
        v["code"]: OrgUnit(v["code"], v["name"], v["short_name"] or derive_short_name(v["name"]))
        for _, v in read_csv_table(BAIYUN_UNITS).rows
    }


def _spread(code: str, salt: int) -> float:
    """A stable number in [-1, 1) from a code, so a community's place does not depend on any RNG."""
    h = 2166136261
    for ch in f"{code}:{salt}":
        h = ((h ^ ord(ch)) * 16777619) & 0xFFFFFFFF
    return h / 2**31 - 1.0


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0] + 1e-4), bounds[1] - 1e-4)


@lru_cache(maxsize=1)
def baiyun_streets() -> tuple[Street, ...]:
    """白云区's 24 streets/towns with their 404 communities, anchored on the map."""
    rows = [values for _, values in read_csv_table(BAIYUN_DIVISIONS).rows]
    streets: dict[str, dict[str, str]] = {}
    communities: dict[str, list[Community]] = {}
    for row in rows:
        if row["level"] == "street":
            streets[row["code"]] = row
            communities[row["code"]] = []
    for row in rows:
        if row["level"] != "community":
            continue
        parent = row["parent_code"]
        lat0, lng0, radius = STREET_ANCHORS[parent]
        short = derive_short_name(row["name"])
        village = short.endswith("村")
        lat = _clamp(lat0 + radius * _spread(row["code"], 1), LAT_RANGE)
        lng = _clamp(lng0 + radius * _spread(row["code"], 2), LNG_RANGE)
        communities[parent].append(Community(row["code"], row["name"], short, parent, village, lat, lng))
    return tuple(
        Street(
            code=code,
            name=row["name"],
            short=_short_street(row["name"]),
            lat=STREET_ANCHORS[code][0],
            lng=STREET_ANCHORS[code][1],
            radius=STREET_ANCHORS[code][2],
            communities=tuple(sorted(communities[code], key=lambda c: c.code)),
        )
        for code, row in sorted(streets.items())
    )


@lru_cache(maxsize=1)
def places_by_code() -> dict[str, tuple[Street, Community | None]]:
    """Each street's and community's code → (its street, the community or None): where a unit is on the demo's map."""
    found: dict[str, tuple[Street, Community | None]] = {}
    for street in baiyun_streets():
        found[street.code] = (street, None)
        for community in street.communities:
            found[community.code] = (street, community)
    return found


# How far a point strays from its community's point (at most twice this share of its street's radius, on each axis)
# and from its street's centre when no community is known.
COMMUNITY_SPREAD = 0.25
STREET_SPREAD = 0.35


def bounded_gauss(rng: Random, sigma: float) -> float:
    """A normal draw of ``sigma``, cut at two sigmas: a point near a place stays near it (one draw, as ``gauss``)."""
    return max(-2 * sigma, min(2 * sigma, rng.gauss(0, sigma)))


def point_near(
    rng: Random, street: Street, community: Community | None, *, share: float | None = None
) -> tuple[float, float]:
    """(lat, lng) of a place in ``community`` of ``street`` (in the street when no community is known): around the
    community's point, within ``2·share·radius`` of it on each axis (default :data:`COMMUNITY_SPREAD`), or around
    the street's centre (:data:`STREET_SPREAD`); inside the district's box, to six decimals."""
    if community is not None:
        at, sigma = (community.lat, community.lng), street.radius * (COMMUNITY_SPREAD if share is None else share)
    else:
        at, sigma = (street.lat, street.lng), street.radius * (STREET_SPREAD if share is None else share)
    lat = _clamp(at[0] + bounded_gauss(rng, sigma), LAT_RANGE)
    lng = _clamp(at[1] + bounded_gauss(rng, sigma), LNG_RANGE)
    return round(lat, 6), round(lng, 6)


ESTATES_PER_COMMUNITY = 4


@lru_cache(maxsize=1)
def estates() -> dict[str, tuple[str, ...]]:
    """Each community's estates (小区), by community code: :data:`ESTATES_PER_COMMUNITY` names, no name in two
    communities of the district — half after the community (棠溪花园), half from :data:`NAME_WORDS` (锦绣雅苑)
    while such names last. Stable: a hash of the community's code orders its candidates, no RNG."""
    communities = [c for street in baiyun_streets() for c in street.communities]
    taken: set[str] = set()
    found: dict[str, list[str]] = {c.code: [] for c in communities}

    def take(community: Community, pool: list[str], upto: int) -> None:
        names = found[community.code]
        for name in pool:
            if len(names) >= upto:
                return
            if name not in taken and name != community.short:
                names.append(name)
                taken.add(name)

    def shuffled(code: str, names: list[str], salt: int) -> list[str]:
        return sorted(names, key=lambda name: _spread(code + name, salt))

    own = {c.code: shuffled(c.code, [community_stem(c) + s for s in ESTATE_SUFFIX], 3) for c in communities}
    words = [w + suffix for w in NAME_WORDS for suffix in ESTATE_SUFFIX]
    # Every community's own names first (a 明珠社区 keeps 明珠花园 though 明珠 is a word of the others' names too).
    for c in communities:
        take(c, own[c.code], ESTATES_PER_COMMUNITY // 2)
    for c in communities:
        take(c, shuffled(c.code, words, 4), ESTATES_PER_COMMUNITY)
        take(c, own[c.code], ESTATES_PER_COMMUNITY)
    return {code: tuple(names) for code, names in found.items()}


def community_stem(community: Community) -> str:
    """The community's name without 社区 / 村 (棠溪南社区 → 棠溪南), as the texts name places after it."""
    for suffix in ("社区", "村"):
        if community.short.endswith(suffix) and len(community.short) > len(suffix):
            return community.short[: -len(suffix)]
    return community.short


# --- scenarios --------------------------------------------------------------------------------------------

FLAT = (1.0,) * 12
RAINY = (0.15, 0.2, 0.5, 1.2, 2.4, 3.0, 2.6, 2.4, 1.6, 0.5, 0.2, 0.15)
TYPHOON = (0.0, 0.0, 0.0, 0.05, 0.2, 0.8, 2.5, 3.0, 2.5, 0.6, 0.1, 0.0)
SUMMER = (0.35, 0.35, 0.6, 0.9, 1.4, 2.0, 2.4, 2.4, 1.8, 1.0, 0.5, 0.35)
WARM = (0.6, 0.6, 0.8, 1.0, 1.2, 1.3, 1.4, 1.4, 1.2, 1.0, 0.8, 0.7)
ENROLMENT = (0.3, 0.4, 0.8, 2.2, 3.0, 3.0, 2.4, 1.2, 0.8, 0.4, 0.3, 0.3)
MOSQUITO = (0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.6, 2.8, 2.6, 1.8, 0.8, 0.3)
DRY_AIR = (1.5, 1.3, 1.0, 0.8, 0.7, 0.6, 0.6, 0.6, 0.8, 1.1, 1.4, 1.6)
WINTER = (1.5, 1.3, 1.1, 0.9, 0.8, 0.7, 0.7, 0.7, 0.8, 1.0, 1.2, 1.4)
RENTAL = (0.9, 1.6, 1.5, 1.0, 0.9, 1.4, 1.5, 1.2, 0.9, 0.8, 0.8, 0.9)


@dataclass(frozen=True)
class Scenario:
    """One kind of appeal: how citizens phrase it, where it is filed and who handles it."""

    key: str
    category: str  # path in the 3-level taxonomy
    handler: str  # "community" | "street" | "dept:<key>"
    weight: float
    titles: tuple[str, ...]
    contents: tuple[str, ...]
    replies: tuple[str, ...]
    months: tuple[float, ...] = FLAT
    appeal: tuple[tuple[A, float], ...] = ((A.COMPLAINT, 0.7), (A.HELP, 0.2), (A.REPORT, 0.1))
    channels: tuple[tuple[C, float], ...] = ()  # empty: the citizen mix
    urgent: float = 0.03
    critical: float = 0.0
    night: float = 0.0  # extra share of appeals filed 21:00–02:00
    assist: str | None = None  # unit that commonly co-handles ("street", "community", "dept:<key>")
    days_factor: float = 1.0  # how long the work takes relative to the time limit
    instant: float = 0.0  # share of consultations answered at once from the knowledge base
    village_only: bool = False
    hotspot: bool = False  # can form a recurring cluster at one place


CITIZEN_CHANNELS: tuple[tuple[C, float], ...] = (
    (C.HOTLINE, 0.70),
    (C.WEB, 0.09),
    (C.APP, 0.10),
    (C.MAILBOX, 0.035),
    (C.OPINION, 0.025),
    (C.GRID, 0.05),
)

CONSULT = ((A.CONSULTATION, 0.85), (A.HELP, 0.1), (A.SUGGESTION, 0.05))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "waterlogging",
        "农村农业/水利水电/防汛抗旱",
        "dept:water",
        5.0,
        (
            "{road}暴雨后严重水浸",
            "{place}一下雨就内涝",
            "反映{road}路段积水严重",
            "{place}附近水浸街问题",
        ),
        (
            "{opener}{time_rain}，{road}{road_part}积水{depth}，{impact}。{repeat}{closer}",
            "{opener}{place}门口每逢下雨必水浸，{time_rain}积水{depth}，{impact}，排水口明显不够。{closer}",
            "{opener}{road}{road_part}地势低洼，{time_rain}水浸到{depth}，{impact}。{repeat}希望彻底整治排水系统。",
            "{opener}反映{place}内涝问题：{time_rain}，{impact}。{repeat}{closer}",
        ),
        (
            "经现场核查，{road}积水系排水管网过流能力不足所致，我单位已组织清疏雨水口并安排抽排，"
            "后续将纳入排水提升改造计划。",
            "已派三防队伍现场抽排，积水已退，相关排水改造工程正在报批。",
        ),
        months=RAINY,
        appeal=((A.COMPLAINT, 0.5), (A.HELP, 0.4), (A.SUGGESTION, 0.1)),
        channels=(
            (C.HOTLINE, 0.55),
            (C.APP, 0.1),
            (C.WEB, 0.05),
            (C.GRID, 0.08),
            (C.SENSOR, 0.15),
            (C.VIDEO_AI, 0.07),
        ),
        urgent=0.25,
        critical=0.04,
        assist="street",
        hotspot=True,
    ),
    Scenario(
        "drainage",
        "城乡建设/城市建设和市政管理/城市公共设施",
        "street",
        3.0,
        (
            "{place}下水道堵塞污水外溢",
            "{road}沙井冒污水",
            "{place}排水管堵塞臭气熏天",
        ),
        (
            "{opener}{place}楼下的下水道堵塞{duration}了，污水漫到路面，气味很大，{impact_small}。{closer}",
            "{opener}{road}{num}号旁边的沙井一直往外冒污水，{duration}没人处理，{closer}",
            "{opener}{place}化粪池满溢，污水流到{road}上，居民出行很不方便。{repeat}{closer}",
        ),
        (
            "已联系排水养护单位对{road}管道进行疏通，现场已恢复正常。",
            "经核查属小区内部管网，已督促物业公司清疏并对化粪池清掏。",
        ),
        months=RAINY,
        assist="dept:water",
        hotspot=True,
    ),
    Scenario(
        "typhoon",
        "城乡建设/城市建设和市政管理/园林绿化",
        "dept:forestry",
        1.2,
        (
            "台风过后{road}大树倒伏",
            "{place}广告牌被台风吹歪有危险",
            "台风天{road}树枝压住电线",
        ),
        (
            "{opener}台风过后{road}{road_part}有一棵大树倒在路中间，车辆无法通行，{closer}",
            "{opener}{place}外墙的广告牌被台风吹得摇摇欲坠，下面就是人行道，非常危险，请尽快处理。",
            "{opener}昨晚台风，{road}的树枝断了压在电线上，{impact_small}。{closer}",
        ),
        (
            "已组织园林绿化队伍对倒伏树木进行清理，道路已恢复通行。",
            "已责令业主拆除受损广告牌，并对周边安全隐患进行排查。",
            "已协调供电部门和园林队伍清理压线树枝，线路已恢复正常。",
        ),
        months=TYPHOON,
        appeal=((A.HELP, 0.6), (A.REPORT, 0.3), (A.COMPLAINT, 0.1)),
        urgent=0.4,
        critical=0.05,
        assist="street",
        days_factor=0.5,
    ),
    Scenario(
        "ac_noise",
        "环境保护/环境污染/噪音污染",
        "community",
        2.0,
        (
            "{place}空调外机噪音扰民",
            "投诉楼下商铺空调外机噪音",
            "{place}空调外机噪音和滴水问题",
        ),
        (
            "{opener}{place}{building}栋楼下{shop}的空调外机{time_night}一直轰轰响，{impact_noise}。{closer}",
            "{opener}对面{shop}的几台空调外机正对着我家窗户，噪音很大还滴水，{duration}了，{closer}",
            "{opener}{place}新装的空调外机离住户太近，{time_night}噪音吵得睡不着。{repeat}{closer}",
        ),
        (
            "社区已联合物业上门协调，商户已对空调外机加装减震隔音设施。",
            "经协调，商户同意移位空调外机，噪音问题已缓解。",
        ),
        months=SUMMER,
        night=0.3,
        assist="street",
    ),
    Scenario(
        "construction_noise",
        "环境保护/环境污染/噪音污染",
        "dept:housing",
        3.2,
        (
            "{site}夜间施工噪音扰民",
            "投诉{site}半夜施工",
            "{place}旁边工地深夜施工",
            "{site}夜间打桩噪音",
        ),
        (
            "{opener}{site}{time_night}还在施工，{machine}声音非常大，{impact_noise}。{repeat}{closer}",
            "{opener}{place}旁边的{site}天天{time_night}作业，{machine}吵得整栋楼无法休息，"
            "请查一下有没有夜间施工许可。{closer}",
            "{opener}{site}连续{duration}夜间施工，{impact_noise}。{repeat}{closer}",
        ),
        (
            "经现场检查，{site}未取得夜间施工许可，已责令停止夜间作业并立案查处。",
            "该工地持有夜间连续施工证明，已要求其采取降噪措施并提前公示。",
        ),
        night=0.55,
        assist="street",
        hotspot=True,
    ),
    Scenario(
        "illegal_parking",
        "政法/交通管理/交通安全管理",
        "dept:traffic",
        3.5,
        (
            "{road}违章停车堵塞交通",
            "{place}消防通道被占用",
            "{road}货车乱停乱放装卸货",
        ),
        (
            "{opener}{road}{road_part}两边长期停满车辆，{impact_traffic}。{closer}",
            "{opener}{place}消防通道被私家车占用，{impact_traffic}，出了事消防车都进不来。{closer}",
            "{opener}每天{time_evening}{road}上都有货车乱停乱放装卸货，{impact_traffic}。{repeat}",
        ),
        (
            "交警已安排警力对{road}违停车辆进行查处，并将加强该路段巡查。",
            "已对占用消防通道车辆进行劝离，并协调物业设置禁停标志。",
            "已对违停货车进行查处，并在该路段增设禁停标志和限时装卸区。",
        ),
        channels=((C.HOTLINE, 0.6), (C.APP, 0.12), (C.WEB, 0.06), (C.GRID, 0.08), (C.VIDEO_AI, 0.14)),
        appeal=((A.COMPLAINT, 0.6), (A.REPORT, 0.35), (A.SUGGESTION, 0.05)),
        days_factor=0.5,
        hotspot=True,
    ),
    Scenario(
        "helmet",
        "政法/交通管理/交通安全管理",
        "dept:traffic",
        0.6,
        ("{road}电动自行车骑行不戴头盔", "{road}电动车逆行不戴头盔"),
        (
            "{road}{road_part}监测到多名电动自行车驾驶人未佩戴安全头盔，请属地核查处置。",
            "视频巡查发现{road}路口电动车逆行、未戴头盔现象突出，请加强整治。",
        ),
        ("已在该路口设置劝导岗，对未佩戴头盔行为进行劝导和教育。",),
        channels=((C.VIDEO_AI, 0.85), (C.GRID, 0.15)),
        appeal=((A.REPORT, 1.0),),
        days_factor=0.4,
    ),
    Scenario(
        "garbage",
        "城乡建设/城市建设和市政管理/环境卫生",
        "community",
        4.0,
        (
            "{place}垃圾堆积无人清运",
            "{road}垃圾桶满溢",
            "{place}建筑垃圾乱倒",
            "{village}垃圾成堆臭味大",
        ),
        (
            "{opener}{place}{corner}的垃圾已经{duration}没有清运，{impact_smell}。{closer}",
            "{opener}{road}的垃圾桶每天都满溢出来，苍蝇老鼠很多，{closer}",
            "{opener}有人在{place}旁边偷倒建筑垃圾和装修垃圾，越堆越多。{repeat}{closer}",
            "{opener}{village}{corner}垃圾成堆，天气一热{impact_smell}。{closer}",
        ),
        (
            "已安排环卫工人对{place}垃圾进行清运，并增加清运频次。",
            "已协调环卫部门增加{road}垃圾桶数量和清运频次。",
            "已清理建筑垃圾，并在该处安装监控、设置警示牌，防止再次偷倒。",
            "已组织村社保洁人员清理垃圾，并落实每日保洁责任人。",
        ),
        months=WARM,
        channels=((C.HOTLINE, 0.55), (C.APP, 0.1), (C.WEB, 0.05), (C.GRID, 0.16), (C.VIDEO_AI, 0.14)),
        assist="dept:urban",
        days_factor=0.5,
        hotspot=True,
    ),
    Scenario(
        "vending",
        "城乡建设/城市建设和市政管理/城管执法",
        "street",
        3.0,
        (
            "{road}流动摊贩占道经营",
            "{place}门口夜宵档占道",
            "{road}商铺出店经营",
        ),
        (
            "{opener}{road}{road_part}每天{time_evening}都有大量流动摊贩摆卖，{impact_traffic}，"
            "还留下很多垃圾。{closer}",
            "{opener}{place}门口的夜宵档把桌椅摆到人行道上，{time_night}还很吵，{impact_noise}。{closer}",
            "{opener}{road}的商铺把货物摆到店外经营，人行道都被占满了。{repeat}{closer}",
        ),
        (
            "街道综合执法队已对{road}占道经营行为进行整治，并安排人员定点巡查。",
            "已对夜宵档占道经营进行劝导并责令整改，后续加强巡查。",
            "已责令商户将货物收回店内经营，对拒不整改的依法查处。",
        ),
        channels=((C.HOTLINE, 0.55), (C.APP, 0.1), (C.WEB, 0.05), (C.GRID, 0.15), (C.VIDEO_AI, 0.15)),
        appeal=((A.COMPLAINT, 0.6), (A.REPORT, 0.4)),
        night=0.15,
        days_factor=0.5,
        hotspot=True,
    ),
    Scenario(
        "property",
        "城乡建设/住房保障与房地产/物业服务",
        "community",
        3.0,
        (
            "{estate}物业服务差",
            "投诉{estate}物业乱涨物业费",
            "{estate}物业推诿不维修",
        ),
        (
            "{opener}{estate}物业公司{property_issue}，业主多次反映都没有回应。{closer}",
            "{opener}{estate}物业今年突然上调物业费，没有召开业主大会，也没有公示收支，{closer}",
            "{opener}{estate}{building}栋{property_issue}，物业一直推脱。{repeat}{closer}",
        ),
        (
            "社区已约谈{estate}物业公司，督促其落实整改并公示物业服务收支情况。",
            "经协调，物业公司已完成维修，并承诺建立报修回访制度。",
        ),
        assist="dept:housing",
        hotspot=True,
    ),
    Scenario(
        "rental",
        "城乡建设/住房保障与房地产/房屋租赁",
        "street",
        2.0,
        ("房东不退押金", "{place}出租屋租赁纠纷", "房东提前收房不退押金"),
        (
            "{opener}我在{address_short}租房，合同到期退租，房东以各种理由扣押金{amount}元，{closer}",
            "{opener}{place}的二房东把房子分隔成很多小间出租，消防隐患很大，退租时还不退押金。{closer}",
            "{opener}租住{address_short}，房东突然要求提前收房并且不退押金{amount}元，请帮忙协调。",
        ),
        (
            "街道出租屋管理服务中心已组织双方调解，房东同意退还押金。",
            "已告知来电人可通过人民调解或诉讼途径解决租赁纠纷，并对该出租屋开展安全检查。",
        ),
        months=RENTAL,
        appeal=((A.HELP, 0.6), (A.COMPLAINT, 0.3), (A.CONSULTATION, 0.1)),
        instant=0.2,
    ),
    Scenario(
        "social_insurance",
        "劳动和社会保障/城镇职工社会保险/职工养老保险",
        "dept:hrss",
        2.5,
        ("咨询养老保险转移接续", "咨询社保断缴补缴", "灵活就业人员参保咨询"),
        (
            "{opener}我之前在外省交了{years_n}年社保，现在在白云区工作，想咨询养老保险怎么转移接续？",
            "{opener}公司之前断缴了{months_n}个月社保，现在能不能补缴？需要什么材料？",
            "{opener}我是灵活就业人员，想咨询在白云区怎么参加职工养老保险，每月要交多少？",
        ),
        (
            "养老保险关系转移可通过国家社会保险公共服务平台申请，转入地社保经办机构受理后办理。",
            "已电话告知来电人补缴政策及所需材料，可携带身份证到区社保经办窗口办理。",
            "已告知来电人灵活就业人员参保办理方式和缴费档次。",
        ),
        appeal=CONSULT,
        instant=0.45,
        days_factor=0.4,
    ),
    Scenario(
        "wage_arrears",
        "劳动和社会保障/工资福利/工资发放",
        "dept:hrss",
        2.2,
        ("{company}拖欠工资", "反映{site}拖欠农民工工资", "{company}欠薪求助"),
        (
            "{opener}我在{company}上班，公司已经{months_n}个月没发工资了，一共欠{amount}元，老板一直拖着不给。{closer}",
            "{opener}我们{workers}名工人在{site}干活，包工头拖欠工资{amount}元，快过年了还不给，请帮帮我们。",
            "{opener}{company}拖欠{months_n}个月工资，现在人都找不到了，{closer}",
        ),
        (
            "劳动保障监察大队已约谈{company}负责人，责令其限期支付拖欠工资，已支付完毕。",
            "经调解，施工总承包单位已先行垫付工人工资{amount}元。",
            "已对{company}立案调查，并引导劳动者申请劳动仲裁维护权益。",
        ),
        appeal=((A.HELP, 0.7), (A.COMPLAINT, 0.3)),
        channels=((C.HOTLINE, 0.78), (C.WEB, 0.08), (C.APP, 0.08), (C.MAILBOX, 0.06)),
        urgent=0.1,
        assist="street",
        hotspot=True,
    ),
    Scenario(
        "school_place",
        "教育文体/考试招生/招生录取",
        "dept:education",
        1.8,
        ("咨询随迁子女积分入学", "{school}学位不足孩子无法入学", "建议{estate}周边增建学校"),
        (
            "{opener}孩子今年{age}岁，户籍不在广州，想咨询在白云区申请公办小学学位需要哪些材料，积分怎么算？",
            "{opener}我家住在{address_short}，对口的{school}说学位已满，孩子上学怎么办？{closer}",
            "{opener}{estate}有上千户居民，附近只有{school}一所小学，学位严重不足，建议增建学校。",
        ),
        (
            "已告知来电人来穗人员随迁子女积分入学政策及申请时间，可在区教育局网站查询。",
            "已核实来电人情况，区教育局将统筹调剂片区内学位。",
            "区教育局已将该片区学位需求纳入学校建设规划。",
        ),
        months=ENROLMENT,
        appeal=((A.CONSULTATION, 0.6), (A.HELP, 0.2), (A.SUGGESTION, 0.15), (A.COMPLAINT, 0.05)),
        instant=0.35,
    ),
    Scenario(
        "medical",
        "卫生计生/医政监管/医疗技术和服务",
        "dept:health",
        1.5,
        ("投诉{hospital}服务态度差", "{hospital}看病排队时间过长", "{hospital}乱收费"),
        (
            "{opener}{time_day}带家人到{hospital}看病，医生态度很差，{closer}",
            "{opener}{hospital}挂号排队要{hours_n}个小时，窗口只开了两个，{closer}",
            "{opener}在{hospital}做检查被收了不该收的费用，要求退还。{closer}",
        ),
        (
            "已转{hospital}核查，医院已对相关医务人员进行批评教育，并向患者致歉。",
            "已督促{hospital}增开挂号窗口并推行分时段预约就诊。",
            "经核查收费符合规定，已向来电人解释收费依据。",
        ),
    ),
    Scenario(
        "medical_insurance",
        "劳动和社会保障/城镇居民社会保险/城镇居民医疗保险",
        "dept:medins",
        1.2,
        ("异地就医备案咨询", "城乡居民医保缴费咨询", "咨询医保报销比例"),
        (
            "{opener}家里老人在外地住院，想咨询广州医保异地就医怎么备案，报销比例是多少？",
            "{opener}想咨询城乡居民医保今年什么时候缴费，每人交多少钱？",
            "{opener}在{hospital}住院花了{amount}元，医保报销比例好像不对，请帮忙查一下。",
        ),
        (
            "已告知来电人异地就医备案可通过粤医保小程序办理。",
            "已告知城乡居民医保缴费时间和标准。",
            "经核查报销按政策目录和比例结算，已向来电人解释。",
        ),
        months=(1.6, 1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.2, 1.4, 1.6),
        appeal=CONSULT,
        instant=0.5,
        days_factor=0.4,
    ),
    Scenario(
        "food_safety",
        "卫生计生/食品药品监管/食品安全",
        "dept:market",
        1.5,
        ("{shop}卫生条件差", "举报{shop}无证经营", "在{shop}吃饭后腹泻"),
        (
            "{opener}{road}的{shop}后厨卫生条件很差，老鼠蟑螂很多，{closer}",
            "{opener}{road}{num}号的{shop}没有营业执照和食品经营许可证，{closer}",
            "{opener}{time_day}在{shop}吃完饭后一家人都拉肚子，怀疑食物有问题。{closer}",
        ),
        (
            "市场监管所已对{shop}进行现场检查，责令其限期整改。",
            "已对无证经营行为立案调查。",
            "已对{shop}食品抽样送检，并责令停业整改。",
        ),
        months=WARM,
        appeal=((A.COMPLAINT, 0.5), (A.REPORT, 0.5)),
        assist="street",
    ),
    Scenario(
        "consumer",
        "商贸旅游/市场监管/商品质量",
        "dept:market",
        1.5,
        ("{shop}售卖假冒伪劣商品", "预付卡商家跑路", "{shop}价格欺诈"),
        (
            "{opener}在{road}的{shop}买的东西质量有问题，商家拒绝退换，{closer}",
            "{opener}{road}的健身房办了{amount}元的会员卡，现在突然关门了，老板联系不上。{closer}",
            "{opener}{shop}明码标价和结账价格不一样，涉嫌价格欺诈。{closer}",
        ),
        (
            "经调解，商家已为消费者办理退货退款。",
            "已对该经营者立案调查，并引导消费者通过民事诉讼追讨预付款。",
            "已对该商家涉嫌价格违法行为立案调查。",
        ),
        appeal=((A.COMPLAINT, 0.7), (A.REPORT, 0.3)),
    ),
    Scenario(
        "illegal_building",
        "城乡建设/城乡规划/违章建筑",
        "street",
        2.0,
        ("举报{place}违章搭建", "{village}有人抢建违法建筑", "{estate}一楼住户扩建占用绿地"),
        (
            "{opener}{place}{building}栋楼顶有人在加建铁皮房，{closer}",
            "{opener}{village}有人晚上偷偷抢建房屋，已经建到{floors}层了，{closer}",
            "{opener}{estate}一楼住户扩建占用公共绿地。{repeat}{closer}",
        ),
        (
            "街道已对该违法建设下达限期拆除通知书，并已组织拆除。",
            "经核查该建筑已取得规划许可，不属于违法建设。",
        ),
        channels=((C.HOTLINE, 0.6), (C.APP, 0.1), (C.WEB, 0.08), (C.GRID, 0.17), (C.MAILBOX, 0.05)),
        appeal=((A.REPORT, 0.7), (A.COMPLAINT, 0.3)),
        assist="dept:planning",
        days_factor=1.3,
        hotspot=True,
    ),
    Scenario(
        "road_damage",
        "城乡建设/城市建设和市政管理/城市公共设施",
        "dept:transport",
        2.0,
        ("{road}路面破损坑洼", "{road}井盖缺失", "{road}人行道地砖松动"),
        (
            "{opener}{road}{road_part}路面坑坑洼洼，下雨积水，{impact_traffic}。{closer}",
            "{opener}{road}{num}号门口的井盖不见了，晚上很危险，请尽快处理。",
            "{opener}{road}人行道的地砖很多松动翘起，老人小孩容易摔倒。{closer}",
        ),
        (
            "已安排养护单位对{road}破损路面进行修补。",
            "已补装井盖并设置警示标志。",
            "已安排对{road}松动地砖进行更换。",
        ),
        channels=((C.HOTLINE, 0.6), (C.APP, 0.12), (C.WEB, 0.06), (C.GRID, 0.16), (C.VIDEO_AI, 0.06)),
        urgent=0.08,
        assist="street",
    ),
    Scenario(
        "street_light",
        "城乡建设/城市建设和市政管理/城市公共设施",
        "dept:urban",
        1.2,
        ("{road}路灯不亮", "{place}附近路灯损坏"),
        (
            "{opener}{road}{road_part}的路灯已经{duration}不亮了，晚上黑漆漆的，{closer}",
            "{opener}{place}门口几盏路灯坏了，晚上下班回家很不安全。{closer}",
        ),
        ("已安排路灯维护单位对{road}故障路灯进行维修，现已恢复照明。",),
        months=WINTER,
        days_factor=0.6,
    ),
    Scenario(
        "water_supply",
        "城乡建设/城市建设和市政管理/自来水供应",
        "dept:water_supply",
        1.5,
        ("{place}突然停水", "{estate}水压太低", "{place}自来水发黄"),
        (
            "{opener}{place}从{time_day}开始停水，没有任何通知，{closer}",
            "{opener}{estate}高层水压不足，{building}栋十楼以上经常没水。{closer}",
            "{opener}{place}的自来水发黄有异味，不敢饮用。{closer}",
        ),
        (
            "经核查为管网抢修临时停水，现已恢复供水。",
            "已对该小区二次供水设施进行检修，水压已恢复正常。",
            "已对管网冲洗并抽检水质，检测结果符合标准。",
        ),
        months=SUMMER,
        urgent=0.12,
    ),
    Scenario(
        "power_outage",
        "城乡建设/城市建设和市政管理/电力供应",
        "dept:power",
        1.2,
        ("{place}频繁停电", "{village}电压不稳"),
        (
            "{opener}{place}这个月已经停电{times_n}次了，{time_night}停电空调都开不了，{closer}",
            "{opener}{village}用电高峰时电压不稳，电器都烧坏了，{closer}",
        ),
        ("已协调供电部门对该片区线路进行检修并增容改造。",),
        months=SUMMER,
        urgent=0.08,
        assist="street",
    ),
    Scenario(
        "bus",
        "城乡建设/城市建设和市政管理/公共汽车",
        "dept:transport",
        1.0,
        ("建议增开{road}公交线路", "{road}站公交车过站不停", "公交司机服务态度差"),
        (
            "{opener}{estate}附近只有一路公交车，{time_day}等车要半小时以上，建议增开线路或加密班次。",
            "{opener}{road}站的公交车经常过站不停，{closer}",
            "{opener}坐公交车时司机态度恶劣，急刹车也不提醒。{closer}",
        ),
        (
            "已将来电人建议转公交企业研究，将视客流情况优化线路。",
            "已转公交企业核查过站不停问题，并加强线路考核。",
            "已转公交企业核查，对驾驶员进行教育。",
        ),
        appeal=((A.SUGGESTION, 0.5), (A.COMPLAINT, 0.5)),
    ),
    Scenario(
        "ride_hailing",
        "交通运输/出租车管理/网约车问题",
        "dept:transport",
        0.6,
        ("机场附近黑车拉客", "网约车绕路多收费"),
        (
            "{opener}白云机场附近经常有黑车拉客，乱开价，{closer}",
            "{opener}坐网约车从{road}到白云站，司机故意绕路，多收了{amount_small}元。{closer}",
        ),
        ("已转交通运输执法部门核查处理。",),
        appeal=((A.COMPLAINT, 0.6), (A.REPORT, 0.4)),
    ),
    Scenario(
        "air_odour",
        "环境保护/环境污染/大气污染",
        "dept:env",
        1.8,
        ("{company}排放废气异味", "{village}有人焚烧垃圾", "{place}附近刺鼻气味"),
        (
            "{opener}{company}每天{time_night}排放刺鼻的废气，{impact_smell}。{repeat}{closer}",
            "{opener}{village}有人露天焚烧垃圾和电线，浓烟很大。{closer}",
            "{opener}{place}附近经常闻到一股化学品的味道，怀疑有工厂偷排。{closer}",
        ),
        (
            "经现场检查，{company}废气处理设施未正常运行，已责令停产整改并立案处罚。",
            "已联合街道对露天焚烧行为进行查处。",
            "已对周边企业开展排查，对废气收集设施不完善的企业责令整改。",
        ),
        months=DRY_AIR,
        channels=(
            (C.HOTLINE, 0.65),
            (C.APP, 0.08),
            (C.WEB, 0.08),
            (C.GRID, 0.07),
            (C.OPINION, 0.04),
            (C.SENSOR, 0.08),
        ),
        night=0.2,
        assist="street",
        hotspot=True,
    ),
    Scenario(
        "river",
        "环境保护/环境污染/水污染",
        "dept:water",
        1.2,
        ("{creek}河涌发黑发臭", "{creek}有人偷排污水", "{creek}水面漂浮垃圾"),
        (
            "{opener}{creek}{road_part}河水发黑发臭，{impact_smell}。{closer}",
            "{opener}{creek}边上有排污口{time_night}往河里偷排污水，{closer}",
            "{opener}{creek}水面上漂满了垃圾和死鱼。{repeat}{closer}",
        ),
        (
            "已对{creek}开展清淤和截污，并对排口进行溯源排查。",
            "经溯源，已封堵违法排污口并立案查处。",
            "已安排河涌保洁单位清理水面垃圾。",
        ),
        months=SUMMER,
        channels=((C.HOTLINE, 0.6), (C.APP, 0.08), (C.WEB, 0.06), (C.GRID, 0.1), (C.SENSOR, 0.16)),
        assist="dept:env",
        hotspot=True,
    ),
    Scenario(
        "mosquito",
        "卫生计生/公共卫生/疾病预防控制",
        "street",
        1.2,
        ("{place}蚊虫多担心登革热", "{place}积水滋生蚊虫"),
        (
            "{opener}{place}{corner}有很多积水和卫生死角，蚊子特别多，担心登革热。{closer}",
            "{opener}{place}附近一个空置工地积水发臭，滋生大量蚊虫。{closer}",
        ),
        ("已组织开展灭蚊和清积水行动，对卫生死角进行清理。",),
        months=MOSQUITO,
        assist="dept:health",
        days_factor=0.5,
    ),
    Scenario(
        "fire_hazard",
        "政法/社会治安/消防安全",
        "community",
        1.5,
        ("{place}楼道电动车充电", "{place}消防隐患", "{shop}住人存在消防隐患"),
        (
            "{opener}{place}{building}栋有住户把电动车推进楼道里充电，电线乱拉，很危险。{closer}",
            "{opener}{place}的消防栓没有水，灭火器都过期了，{closer}",
            "{opener}{road}的{shop}前店后宅，晚上有人住在里面，存在很大消防隐患。{closer}",
        ),
        (
            "社区已联合物业清理楼道电动车，并设置集中充电点。",
            "已督促物业整改消防设施，并开展消防安全宣传。",
            "已联合消防部门对该场所进行检查，责令清理住人。",
        ),
        months=WINTER,
        channels=((C.HOTLINE, 0.6), (C.APP, 0.1), (C.WEB, 0.05), (C.GRID, 0.25)),
        appeal=((A.REPORT, 0.6), (A.COMPLAINT, 0.3), (A.SUGGESTION, 0.1)),
        urgent=0.1,
        assist="dept:fire",
    ),
    Scenario(
        "low_income",
        "民政/社会救助/城镇低保",
        "dept:civil",
        1.0,
        ("咨询低保申请条件", "高龄津贴申领", "困难家庭求助"),
        (
            "{opener}家里{family}，生活很困难，想咨询怎么申请低保？",
            "{opener}父亲今年{age_old}岁了，想咨询高龄老人津贴怎么申请？",
            "{opener}我们家{family}，请社区帮忙看看有没有救助政策。",
        ),
        (
            "已告知来电人低保申请条件及流程，可向户籍所在地街道提出申请。",
            "已告知来电人高龄津贴可在户籍所在地社区居委会申请。",
            "已转社区上门核实家庭情况，符合条件的将纳入临时救助。",
        ),
        appeal=((A.CONSULTATION, 0.6), (A.HELP, 0.4)),
        instant=0.35,
        assist="street",
    ),
    Scenario(
        "hukou",
        "政法/户籍证件/户籍管理",
        "dept:police",
        1.0,
        ("咨询积分入户", "居住证办理咨询", "新生儿落户咨询"),
        (
            "{opener}想咨询广州积分入户今年的政策，需要准备哪些材料？",
            "{opener}我在{address_short}租房，想办居住证，需要房东提供什么资料？",
            "{opener}孩子刚出生，想咨询在白云区怎么办理落户。",
        ),
        ("已告知来电人办理条件和所需材料，可通过穗好办平台预约办理。",),
        appeal=CONSULT,
        instant=0.55,
        days_factor=0.4,
    ),
    Scenario(
        "dog",
        "政法/社会治安/治安案件",
        "community",
        1.0,
        ("{place}遛狗不牵绳", "{place}养狗扰民"),
        (
            "{opener}{place}有住户遛狗不牵绳，还随地大小便，小孩被吓到好几次。{closer}",
            "{opener}{place}{building}栋有户人家养了几条大狗，{time_night}一直叫，{impact_noise}。{closer}",
        ),
        ("社区已上门劝导养犬人文明养犬，并联合派出所开展宣传。",),
        assist="dept:police",
    ),
    Scenario(
        "tree",
        "城乡建设/城市建设和市政管理/园林绿化",
        "dept:forestry",
        1.0,
        ("{road}树木遮挡需修剪", "{place}树枝伸进住户窗户"),
        (
            "{opener}{road}的行道树长得太茂密，挡住了红绿灯和路灯。{closer}",
            "{opener}{place}的大树树枝伸到住户窗户里，虫子很多，{closer}",
        ),
        ("已安排园林养护单位对树木进行修剪。",),
        months=(0.6, 0.7, 1.0, 1.3, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7),
        appeal=((A.HELP, 0.5), (A.SUGGESTION, 0.5)),
        days_factor=0.8,
    ),
    Scenario(
        "village_affairs",
        "农村农业/村务管理/村务公开",
        "street",
        0.8,
        ("{village}村务财务不公开", "{village}集体分红问题"),
        (
            "{opener}我是{village}村民，村里的集体收入和支出从来不公开，{closer}",
            "{opener}{village}今年的集体经济分红少了很多，村委也没有解释。{closer}",
        ),
        ("街道已督促村委会按规定公开村务财务，并向村民作出解释。",),
        appeal=((A.COMPLAINT, 0.5), (A.REPORT, 0.3), (A.CONSULTATION, 0.2)),
        channels=((C.HOTLINE, 0.7), (C.MAILBOX, 0.15), (C.WEB, 0.1), (C.APP, 0.05)),
        days_factor=1.2,
        village_only=True,
    ),
    Scenario(
        "enterprise",
        "经济管理/宏观调控/产业行业政策",
        "dept:commerce",
        1.2,
        ("{company}用电报装慢", "{company}咨询扶持资金申报", "{company}招工难求助", "{company}用地手续咨询"),
        (
            "{opener}我们{company}新厂房申请用电报装已经{duration}了，一直没有接电，影响投产。",
            "{opener}{company}想咨询今年区里的中小企业扶持资金怎么申报，有什么条件？",
            "{opener}{company}目前缺工{workers}人左右，请问区里有没有招聘对接活动？",
            "{opener}{company}想扩建厂房，咨询用地和规划报建的流程。",
        ),
        ("已协调相关部门为企业提供政策辅导和服务对接。", "已安排专人对接企业诉求，问题已解决。"),
        appeal=((A.HELP, 0.5), (A.CONSULTATION, 0.4), (A.SUGGESTION, 0.1)),
        channels=((C.ENTERPRISE, 0.85), (C.HOTLINE, 0.15)),
        assist="dept:hrss",
    ),
    Scenario(
        "elevator",
        "商贸旅游/质监检验检疫/特种设备管理",
        "dept:market",
        1.0,
        ("{estate}电梯经常故障", "{estate}电梯检验合格证过期"),
        (
            "{opener}{estate}{building}栋的电梯这个月坏了{times_n}次，还困过人，{closer}",
            "{opener}{estate}电梯检验合格证已经过期，还在继续使用。{closer}",
        ),
        ("已对该电梯进行安全检查，督促维保单位完成维修。",),
        urgent=0.15,
        assist="community",
    ),
    Scenario(
        "praise",
        "民政/基层选举和社区建设/社区建设",
        "community",
        0.7,
        ("感谢{street}及时处理积水问题", "表扬{community}工作人员"),
        (
            "{opener}之前反映的{road}积水问题，{street}很快就处理好了，特别感谢工作人员！",
            "{opener}{community}的工作人员帮我家老人办理了高龄津贴，服务很热情，特此表扬。",
        ),
        ("感谢您对我们工作的肯定，我们将继续做好服务。",),
        appeal=((A.PRAISE, 1.0),),
        channels=((C.HOTLINE, 0.7), (C.WEB, 0.15), (C.APP, 0.15)),
        days_factor=0.3,
    ),
)

SCENARIO_BY_KEY = {s.key: s for s in SCENARIOS}

# --- phrase book ------------------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玲建国志红文辉鹏飞宇浩欣怡晨佳俊婷雪梅兰峰斌"
OPERATORS = ("话务员" + s for s in ("小陈", "小李", "小黄", "小林", "小梁", "小何", "小周", "小罗"))
OPERATOR_NAMES = tuple(OPERATORS)
DISPATCHERS = ("派单员陈敏", "派单员黄伟", "派单员梁婷", "派单员刘洋")
SUPERVISORS = ("督办员吴静", "督办员郭强")
LEADERS = ("区领导王建国", "区领导李志红")
CALLBACK_AGENTS = ("回访员林佳", "回访员何雪", "回访员罗欣")

NAME_WORDS = (
    "翠林",
    "锦绣",
    "明珠",
    "丽景",
    "金桂",
    "怡景",
    "祥和",
    "汇景",
    "云景",
    "嘉乐",
    "兴华",
    "聚德",
    "福荫",
    "东方",
    "南湖",
    "北苑",
    "泰和",
    "永乐",
    "富康",
    "顺兴",
    "宏达",
    "新兴",
    "华美",
    "康乐",
    "龙湖",
    "凤凰",
    "雅居",
    "万福",
    "长青",
    "同心",
    "和平",
    "建设",
    "振兴",
    "白云",
    "西湖",
    "荔枝",
    "榕树",
    "桃源",
)
ESTATE_SUFFIX = ("花园", "苑", "新村", "雅苑", "大厦", "公寓", "小区", "家园", "豪庭", "山庄")
ROAD_SUFFIX = ("路", "大道", "大街", "东路", "西路", "北路", "南路", "一横路", "二横路", "三巷", "中路")
COMPANY_KIND = ("物流", "皮具", "服装", "电子", "五金", "建材", "餐饮管理", "印刷", "化妆品", "塑料制品")
SHOP_KIND = ("大排档", "餐馆", "烧烤店", "便利店", "超市", "水果店", "五金店", "发廊", "奶茶店", "快餐店")
SITE_KIND = ("项目工地", "安置房工地", "旧改项目工地", "道路改造工程", "地铁站施工工地", "管网改造工程")
CREEK_SUFFIX = ("涌", "河涌", "坑")

SLOTS: dict[str, tuple[str, ...]] = {
    "opener": ("", "", "您好，", "你好，", "我是附近居民，", "本人反映一个问题：", "麻烦反映一下，"),
    "closer": (
        "希望相关部门尽快处理。",
        "请有关部门核实处理，谢谢！",
        "请尽快派人来看看。",
        "希望早日解决。",
        "请相关部门重视。",
        "",
    ),
    "repeat": (
        "",
        "",
        "之前已经反映过，至今没有解决。",
        "这已经是第二次反映了。",
        "多次打电话反映都没有效果。",
        "问题持续很久了。",
    ),
    "time_rain": ("昨天下暴雨", "今天早上一场大雨", "这几天连续降雨", "每次下大雨", "今天下午暴雨"),
    "depth": ("到膝盖", "有三十多厘米深", "没过车轮", "有半米深", "到小腿"),
    "impact": (
        "车辆熄火，行人无法通行",
        "雨水倒灌进一楼商铺和住户家里",
        "小孩上学都要家长背着过",
        "地下车库进水，很多车被泡",
        "公交车都停运了",
    ),
    "impact_small": ("影响居民出行", "臭味很大", "存在安全隐患", "老人小孩都不敢走"),
    "impact_noise": (
        "严重影响居民休息",
        "老人小孩都睡不着觉",
        "第二天上班都没精神",
        "家里有高考生根本没法复习",
    ),
    "impact_traffic": ("行人只能走到机动车道上", "经常造成交通堵塞", "救护车都开不进来", "存在安全隐患"),
    "impact_smell": ("臭气熏天", "窗户都不敢打开", "周边居民苦不堪言", "蚊蝇滋生"),
    "time_night": ("晚上十一点以后", "凌晨一两点", "半夜十二点", "每天晚上十点后", "凌晨三四点"),
    "time_day": ("今天上午", "昨天下午", "前天", "上周末", "本周一"),
    "time_evening": ("傍晚六点以后", "晚上七八点", "下班高峰期"),
    "duration": ("一个多星期", "半个月", "好几天", "一个月", "两个多月", "三天"),
    "road_part": ("路段", "与主干道交界处", "地铁站出口", "公交站附近", "隧道口", "桥底"),
    "corner": ("路口", "垃圾收集点", "后巷", "空地", "围墙边", "停车场旁"),
    "machine": ("打桩机", "挖掘机和泥头车", "混凝土泵车", "电钻切割机", "搅拌车"),
    "property_issue": (
        "电梯经常坏，维修不及时",
        "保安形同虚设，小区外来人员随便进出",
        "垃圾不清理，楼道卫生很差",
        "私自占用公共车位收费",
        "外墙脱落也不维修",
    ),
    "family": ("只有我一个人有收入", "老人常年生病", "孩子残疾需要照顾", "丈夫去世后一个人带两个孩子"),
}
