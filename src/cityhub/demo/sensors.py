"""Monitoring in the demo district: sensors across Baiyun's streets and three days of readings, with a rainstorm
that floods several low points (de-duplicated alarms that open orders), a river that rises after it, a polluted
hour at an air station, a marathon segment over capacity, video-AI cameras that see street vendors, a garbage
heap, a parked car and riders without helmets, and a water-logging probe that went silent (离线) six hours ago. Seeded
once (only when there are no sensors), through the same ingestion as the API, so every alarm and order is made the
way a real one is."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.db import utcnow
from cityhub.monitoring import service
from cityhub.monitoring.models import Sensor
from cityhub.monitoring.schemas import RuleCreate, SensorCreate
from cityhub.org.models import Unit

DAYS = 3
STEP = timedelta(minutes=10)
SEED = 20261202
# Where the demo cameras' snapshots would be: a district's video platform links each detection's picture. The
# reserved .invalid domain resolves nowhere, so the links are plainly illustrative.
SNAPSHOTS = "http://video-platform.baiyun.invalid/snapshots"
# A camera frame at this confidence or more comes with its snapshot, as a platform sends one with each detection.
SNAPSHOT_FROM = 0.5
# A sensor that stops reporting this many hours into the three days — its probe lost power after the storm — so the
# demo shows a silent one (离线) as soon as it is seeded, and the sensor-silence job its alarm.
SILENT_AFTER_HOURS = {"BY-WL-008": DAYS * 24 - 6}


@dataclass(frozen=True)
class _Spec:
    code: str
    name: str
    kind: str
    metrics: dict[str, str]
    street: str  # unit code of the street
    place: str  # what the address adds to the street's (and community's) name
    lat: float
    lng: float
    unit_code: str | None = None  # responsible unit when it is not the community or street it stands in
    capacity: float | None = None
    community: int = 1  # which of the street's communities (by code order)


WATER_BUREAU = "440111-D04"
ENVIRONMENT = "440111-D03"
TRAFFIC_POLICE = "440111-D11"

SENSORS = [
    _Spec(
        "BY-WL-001", "机场路隧道积水监测点", "waterlogging", {"depth": "cm"}, "440111002", "机场路隧道", 23.160, 113.262
    ),
    _Spec(
        "BY-WL-002",
        "槎龙立交桥底积水监测点",
        "waterlogging",
        {"depth": "cm"},
        "440111003",
        "槎龙立交桥底",
        23.176,
        113.241,
    ),
    _Spec(
        "BY-WL-003",
        "广园路下穿通道积水监测点",
        "waterlogging",
        {"depth": "cm"},
        "440111004",
        "广园路下穿通道",
        23.158,
        113.280,
    ),
    _Spec(
        "BY-WL-004", "西槎路涵洞积水监测点", "waterlogging", {"depth": "cm"}, "440111005", "西槎路涵洞", 23.190, 113.236
    ),
    _Spec(
        "BY-WL-005", "黄石路隧道积水监测点", "waterlogging", {"depth": "cm"}, "440111006", "黄石路隧道", 23.190, 113.270
    ),
    _Spec(
        "BY-WL-006",
        "新市墟低洼路段积水监测点",
        "waterlogging",
        {"depth": "cm"},
        "440111008",
        "新市墟低洼路段",
        23.183,
        113.262,
    ),
    _Spec(
        "BY-WL-007", "京溪路下穿积水监测点", "waterlogging", {"depth": "cm"}, "440111010", "京溪路下穿", 23.187, 113.325
    ),
    _Spec(
        "BY-WL-008", "鹤龙路涵洞积水监测点", "waterlogging", {"depth": "cm"}, "440111012", "鹤龙路涵洞", 23.255, 113.295
    ),
    _Spec(
        "BY-RL-001",
        "流溪河钟落潭水位站",
        "river_level",
        {"level": "m"},
        "440111108",
        "流溪河钟落潭段",
        23.390,
        113.390,
        unit_code=WATER_BUREAU,
    ),
    _Spec(
        "BY-RL-002",
        "流溪河太和水位站",
        "river_level",
        {"level": "m"},
        "440111107",
        "流溪河太和段",
        23.330,
        113.350,
        unit_code=WATER_BUREAU,
    ),
    _Spec(
        "BY-RL-003",
        "流溪河江高水位站",
        "river_level",
        {"level": "m"},
        "440111113",
        "流溪河江高段",
        23.300,
        113.230,
        unit_code=WATER_BUREAU,
    ),
    _Spec(
        "BY-RL-004",
        "白海面涌石井水位站",
        "river_level",
        {"level": "m"},
        "440111014",
        "白海面涌石井段",
        23.220,
        113.220,
        unit_code=WATER_BUREAU,
    ),
    _Spec(
        "BY-WQ-001",
        "流溪河人和水质自动站",
        "water_quality",
        {"do": "mg/L", "ph": ""},
        "440111103",
        "流溪河人和断面",
        23.340,
        113.300,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-WQ-002",
        "石井河水质自动站",
        "water_quality",
        {"do": "mg/L", "ph": ""},
        "440111014",
        "石井河石井桥断面",
        23.210,
        113.225,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-WQ-003",
        "景泰涌水质自动站",
        "water_quality",
        {"do": "mg/L", "ph": ""},
        "440111004",
        "景泰涌出口",
        23.165,
        113.275,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-AQ-001",
        "白云区监测站（嘉禾）",
        "air_quality",
        {"pm25": "μg/m³", "aqi": ""},
        "440111012",
        "嘉禾望岗",
        23.250,
        113.290,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-AQ-002",
        "同德空气监测站",
        "air_quality",
        {"pm25": "μg/m³", "aqi": ""},
        "440111005",
        "同德围",
        23.195,
        113.240,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-AQ-003",
        "太和空气监测站",
        "air_quality",
        {"pm25": "μg/m³", "aqi": ""},
        "440111107",
        "太和镇中心",
        23.330,
        113.360,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-AQ-004",
        "石井空气监测站",
        "air_quality",
        {"pm25": "μg/m³", "aqi": ""},
        "440111014",
        "石井大道",
        23.215,
        113.225,
        unit_code=ENVIRONMENT,
    ),
    _Spec(
        "BY-CR-001",
        "白云马拉松 起点（云城）",
        "crowd_count",
        {"people": "人"},
        "440111016",
        "白云新城云城东路",
        23.175,
        113.270,
        capacity=8000,
    ),
    _Spec(
        "BY-CR-002",
        "白云马拉松 10 公里（同和）",
        "crowd_count",
        {"people": "人"},
        "440111009",
        "同和路",
        23.195,
        113.310,
        capacity=3000,
    ),
    _Spec(
        "BY-CR-003",
        "白云马拉松 21 公里（京溪）",
        "crowd_count",
        {"people": "人"},
        "440111010",
        "京溪路",
        23.188,
        113.323,
        capacity=3000,
    ),
    _Spec(
        "BY-CR-004",
        "白云马拉松 终点（景泰）",
        "crowd_count",
        {"people": "人"},
        "440111004",
        "白云山南门",
        23.165,
        113.290,
        capacity=10000,
    ),
]

# Video-AI cameras (视频AI识别): their analytics report a confidence per kind of problem (monitoring.rules.DETECTIONS).
CAMERAS = [
    _Spec(
        "BY-CAM-001",
        "三元里大道菜市场路口 AI 摄像头",
        "video_ai",
        {"street_vending": "", "garbage_exposed": "", "out_of_store": ""},
        "440111002",
        "三元里大道菜市场路口",
        23.162,
        113.263,
    ),
    _Spec(
        "BY-CAM-002",
        "棠景街商业街 AI 摄像头",
        "video_ai",
        {"street_vending": "", "out_of_store": "", "bike_disorder": ""},
        "440111007",
        "棠景商业街",
        23.175,
        113.258,
    ),
    _Spec(
        "BY-CAM-003",
        "石井大道城中村入口 AI 摄像头",
        "video_ai",
        {"garbage_exposed": "", "materials_stacked": ""},
        "440111014",
        "石井大道城中村入口",
        23.212,
        113.228,
    ),
    _Spec(
        "BY-CAM-004",
        "同和路公交站 AI 摄像头",
        "video_ai",
        {"illegal_parking": "", "helmetless_ebike": "", "road_waterlogging": ""},
        "440111009",
        "同和路公交站",
        23.196,
        113.309,
    ),
]
SENSORS += CAMERAS

# Road segments (交通运行): the traffic platform's performance index (0–10) per segment, every ten minutes.
ROADS = [
    _Spec(
        "BY-TR-001",
        "机场路（三元里段）",
        "traffic",
        {"tpi": ""},
        "440111002",
        "机场路",
        23.165,
        113.262,
        TRAFFIC_POLICE,
    ),
    _Spec(
        "BY-TR-002",
        "广园中路（景泰段）",
        "traffic",
        {"tpi": ""},
        "440111004",
        "广园中路",
        23.158,
        113.285,
        TRAFFIC_POLICE,
    ),
    _Spec(
        "BY-TR-003",
        "白云大道北（同和段）",
        "traffic",
        {"tpi": ""},
        "440111009",
        "白云大道北",
        23.197,
        113.305,
        TRAFFIC_POLICE,
    ),
    _Spec(
        "BY-TR-004",
        "广州大道北（京溪段）",
        "traffic",
        {"tpi": ""},
        "440111010",
        "广州大道北",
        23.190,
        113.325,
        TRAFFIC_POLICE,
    ),
]
# How congested each segment gets at its worst on a working day (evening; mornings a little less): 广园中路 jams.
ROAD_PEAKS = {"BY-TR-001": 7.2, "BY-TR-002": 9.2, "BY-TR-003": 6.3, "BY-TR-004": 5.4}
SENSORS += ROADS

_ENFORCEMENT = "城乡建设/城市建设和市政管理/城管执法"
_INFRASTRUCTURE = "城乡建设/城市建设和市政管理/基础设施"


def _detected(
    name: str, metric: str, duration_s: int, category: str, *, threshold: float = 0.8, **more: Any
) -> dict[str, Any]:
    """A video-AI detection's rule: a confidence of ``threshold`` or more held ``duration_s`` seconds (0: at once),
    cleared below 0.3, a warning unless ``more`` says otherwise."""
    rule: dict[str, Any] = dict(
        name=name,
        sensor_kind="video_ai",
        metric=metric,
        comparison=">=",
        threshold=threshold,
        clear_threshold=0.3,
        severity="warning",
        category=category,
    )
    if duration_s:
        rule["duration_s"] = duration_s
    return rule | more


RULES = [
    dict(
        name="道路积水超过 15 厘米",
        sensor_kind="waterlogging",
        metric="depth",
        comparison=">",
        threshold=15,
        clear_threshold=5,
        duration_s=600,
        severity="critical",
        urgency="urgent",
        category="城乡建设/城市建设和市政管理/基础设施",
    ),
    dict(
        name="河道水位达到警戒水位 5.2 米",
        sensor_kind="river_level",
        metric="level",
        comparison=">=",
        threshold=5.2,
        clear_threshold=5.0,
        duration_s=1800,
        severity="warning",
        urgency="urgent",
        category="农村农业/水利水电/防汛抗旱",
    ),
    dict(
        name="溶解氧低于 3 mg/L（劣 V 类风险）",
        sensor_kind="water_quality",
        metric="do",
        comparison="<",
        threshold=3,
        clear_threshold=4,
        duration_s=3600,
        severity="warning",
        category="环境保护/环境污染/水污染",
    ),
    dict(
        name="PM2.5 超过 115（重度污染）",
        sensor_kind="air_quality",
        metric="pm25",
        comparison=">",
        threshold=115,
        clear_threshold=75,
        duration_s=3600,
        severity="info",
        opens_order=False,
        category="环境保护/环境污染/大气污染",
    ),
    _detected("暴露垃圾（置信度 ≥ 0.8）", "garbage_exposed", 0, "城乡建设/城市建设和市政管理/环境卫生"),
    _detected("占道经营持续 10 分钟", "street_vending", 600, _ENFORCEMENT),
    # a delivery unloaded for a few minutes is no pile
    _detected("乱堆物料持续 30 分钟", "materials_stacked", 1800, _ENFORCEMENT),
    _detected("出店经营持续 10 分钟", "out_of_store", 600, _ENFORCEMENT),
    # as a depth probe's flooding: traffic and people are at risk now
    _detected(
        "道路积水（视频识别）", "road_waterlogging", 600, "城乡建设/城市建设和市政管理/基础设施", urgency="urgent"
    ),
    _detected("非机动车乱停放 15 分钟", "bike_disorder", 900, _ENFORCEMENT),
    _detected("机动车违停 15 分钟", "illegal_parking", 900, "政法/交通管理/交通安全管理", threshold=0.85),
    _detected(
        "骑电动车未戴头盔（只提示，交警批量处理）",
        "helmetless_ebike",
        0,
        "政法/交通管理/交通安全管理",
        threshold=0.9,
        severity="info",
        opens_order=False,
    ),
    dict(
        name="严重拥堵（交通运行指数 ≥ 8）持续 20 分钟",
        sensor_kind="traffic",
        metric="tpi",
        comparison=">=",
        threshold=8,
        clear_threshold=6,
        duration_s=1200,
        severity="info",
        opens_order=False,  # the traffic police's own platform dispatches its officers
    ),
    dict(
        name="人流达到容量 90%",
        sensor_kind="crowd_count",
        metric="people",
        comparison=">=",
        threshold=0.9,
        clear_threshold=0.75,
        of_capacity=True,
        duration_s=300,
        severity="critical",
        urgency="critical",
        category="城乡建设/安全生产/安全隐患",
    ),
]


@dataclass
class SensorSeedReport:
    sensors: int = 0
    rules: int = 0
    readings: int = 0
    alarms_raised: int = 0
    alarms_open: int = 0
    orders_opened: int = 0


def _bump(t: float, start: float, rise: float, top: float, fall: float) -> float:
    """0 before ``start`` hours, rising to 1 over ``rise`` hours, held ``top`` hours, falling over ``fall``."""
    if t < start:
        return 0.0
    if t < start + rise:
        return (t - start) / rise
    if t < start + rise + top:
        return 1.0
    return max(0.0, 1.0 - (t - start - rise - top) / fall)


def _value(spec: _Spec, metric: str, hours: float, local_hour: float, rng: random.Random, index: int) -> float:
    """A plausible reading ``hours`` after the first one: the storm comes 38 hours in, the marathon 55 hours in."""
    noise = rng.gauss(0, 1)
    storm = 38.0
    if spec.kind == "waterlogging":
        # Five low points flood (the last ones less), three stay under the limit; noise crosses it while draining.
        peak = [45, 32, 28, 24, 20, 12, 9, 6][index]
        depth = peak * _bump(hours, storm + 0.2 * index, 1.0, 1.5 + 0.3 * index, 2.5) + max(0.0, noise)
        return round(max(0.0, depth), 1)
    if spec.kind == "river_level":
        # The river rises after the storm; the upstream station is still above its warning level at the end.
        base = [4.1, 3.8, 3.5, 2.2][index - 8]
        flood = [1.6, 1.5, 1.2, 0.6][index - 8]
        fall = [60.0, 14.0, 10.0, 8.0][index - 8]
        return round(base + flood * _bump(hours, storm + 2, 6, 3, fall) + 0.02 * noise, 2)
    if spec.kind == "water_quality":
        if metric == "ph":
            return round(7.2 + 0.1 * noise, 2)
        sag = 4.5 if index == 13 else 1.5  # the storm's overflow sags Shijing river's oxygen below 3 for hours
        diurnal = 0.6 * math.sin((local_hour - 9) / 24 * 2 * math.pi)
        return round(max(0.2, 6.0 + diurnal - sag * _bump(hours, storm + 1, 2, 4, 6) + 0.15 * noise), 2)
    if spec.kind == "air_quality":
        # A haze on day 1 at Jiahe; Shijing's PM2.5 rising again at the end (an open alarm, no order).
        haze = 110 * _bump(hours, 18, 2, 3, 3) if index == 15 else 0.0
        late = 100 * _bump(hours, DAYS * 24 - 3, 1.5, 5, 1) if index == 18 else 0.0
        washed = 0.5 if storm <= hours <= storm + 12 else 1.0  # rain washes the air
        pm25 = (35 + 10 * math.sin((local_hour - 8) / 24 * 2 * math.pi)) * washed + haze + late + 3 * noise
        return round(max(3.0, pm25), 1) if metric == "pm25" else round(max(10.0, pm25 * 1.3), 0)
    if spec.kind == "video_ai":  # a generator of its own: the other sensors' readings stay as they were
        return _detection(spec.code, metric, hours, local_hour, random.Random(f"{spec.code}/{metric}/{hours}"))
    # Crowd counts: the marathon, its segments filling half an hour apart from hour 55.
    capacity = spec.capacity or 1000
    share = [0.7, 0.95, 0.8, 0.85][index - 19]
    start = 2 * 24 + 7 + 0.5 * (index - 19)
    return round(max(0.0, capacity * share * _bump(hours, start, 0.5, 1.0, 1.0) + 20 * noise), 0)


def _traffic(code: str, at: datetime) -> float:
    """A road segment's traffic performance index at local time ``at``: free-flowing at night, a morning peak around
    8:30 and an evening one around 18:30 on working days (weekends: a gentler midday and evening), with noise of its
    own (the other sensors' random draws stay as they were)."""
    hour = at.hour + at.minute / 60
    rng = random.Random(f"{code}/{at.isoformat()}")
    top = ROAD_PEAKS.get(code, 5.0)

    def peak(centre: float, width: float) -> float:
        return math.exp(-(((hour - centre) / width) ** 2))

    if at.weekday() < 5:
        busy = 0.8 * top * peak(8.5, 1.0) + top * peak(18.5, 1.1)
    else:
        busy = 0.5 * top * peak(12.0, 2.5) + 0.6 * top * peak(18.0, 1.5)
    base = 1.0 + 1.2 * peak(14.0, 6.0)  # daytime traffic between the peaks
    return round(min(10.0, max(0.3, max(base, busy) + rng.gauss(0, 0.25))), 1)


def _detection(code: str, metric: str, hours: float, local_hour: float, rng: random.Random) -> float:
    """A camera's confidence that it sees ``metric`` ``hours`` after the first reading: vendors at the market
    junction every evening, a garbage heap at the urban-village gate from hour 50 (still there at the end), a car
    parked at the bus stop for half an hour, riders without helmets flashing past, building materials piled at the
    urban-village gate for a few hours on the first day, shops selling on the pavement of the commercial street and,
    another day, its bicycles heaped, two hours each (by the hours from the start, not the clock: one episode each
    whatever the hour the demo is seeded), water over the road at the bus stop in the storm; otherwise a clear
    scene. The road's water is drawn apart (the metric was added later: the others' draws stay as they were)."""
    seen = 0.0
    if metric == "road_waterlogging":
        rng = random.Random(f"{code}/{metric}/{hours}")
    if metric == "street_vending" and code == "BY-CAM-001" and 18.5 <= local_hour < 20.5:
        seen = 0.88
    elif metric == "garbage_exposed" and code == "BY-CAM-003" and hours >= 50:
        seen = 0.9
    elif metric == "illegal_parking" and 30 <= hours < 30.5:
        seen = 0.92
    elif metric == "helmetless_ebike" and rng.random() < 0.01:
        seen = 0.95
    elif metric == "materials_stacked" and code == "BY-CAM-003" and 20 <= hours < 26:
        seen = 0.86
    elif metric == "out_of_store" and code == "BY-CAM-002" and 10 <= hours < 12:
        seen = 0.89
    elif metric == "bike_disorder" and code == "BY-CAM-002" and 60 <= hours < 62:
        seen = 0.87
    elif metric == "road_waterlogging" and code == "BY-CAM-004" and 38.5 <= hours < 41:
        seen = 0.91
    return round(min(1.0, max(0.0, seen + rng.gauss(0, 0.03))) if seen else max(0.0, rng.gauss(0, 0.03)), 2)


def seed_sensors(session: Session, *, now: datetime | None = None) -> SensorSeedReport:
    """Register the demo sensors and rules and feed them three days of readings ending ``now``; nothing when
    sensors exist already."""
    from cityhub.config import get_settings
    from cityhub.workorders.categories import find_category

    report = SensorSeedReport()
    if session.scalar(select(func.count()).select_from(Sensor)):
        return report
    units = {code: (uid, name) for uid, code, name in session.execute(select(Unit.id, Unit.code, Unit.name))}
    communities: dict[int | None, list[tuple[str, str]]] = {}
    for code, name, parent in session.execute(
        select(Unit.code, Unit.name, Unit.parent_id).where(Unit.tier == "community").order_by(Unit.code)
    ):
        communities.setdefault(parent, []).append((code, name))
    for spec in SENSORS:
        if spec.street not in units:
            continue
        street_id, street_name = units[spec.street]
        members = communities.get(street_id, [])
        community = members[min(spec.community, len(members)) - 1] if members else None
        place = f"广州市白云区{street_name}" + (community[1].removesuffix("居委会") if community else "")
        unit_code = spec.unit_code if spec.unit_code in units else (community[0] if community else spec.street)
        service.create_sensor(
            session,
            data=SensorCreate(
                code=spec.code,
                name=spec.name,
                kind=spec.kind,
                metrics=spec.metrics,
                lat=spec.lat,
                lng=spec.lng,
                address=f"{place}{spec.place}",
                unit_code=unit_code,
                capacity=spec.capacity,
            ),
        )
        report.sensors += 1
    if not report.sensors:
        return report
    for rule in RULES:
        category = rule.get("category")
        if isinstance(category, str) and find_category(session, name_or_path=category) is None:
            rule = {**rule, "category": None}
        service.create_rule(session, data=RuleCreate.model_validate(rule))
        report.rules += 1
    session.flush()

    rng = random.Random(SEED)
    now = now or utcnow()
    tz = get_settings().tz
    # Three days up to now: the storm, the river and the marathon always happen within them, whatever the hour.
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 10)
    local_end = end.astimezone(tz)
    start = local_end - timedelta(days=DAYS)
    present = {s.code for s in session.scalars(select(Sensor))}
    items = []
    at = start
    while at <= local_end:
        hours = (at - start).total_seconds() / 3600
        for index, spec in enumerate(SENSORS):
            if spec.code not in present:
                continue
            for metric in spec.metrics:
                if spec.kind == "traffic":
                    value = _traffic(spec.code, at)
                else:
                    value = _value(spec, metric, hours, at.hour + at.minute / 60, rng, index)
                if hours > SILENT_AFTER_HOURS.get(spec.code, hours):
                    continue  # drawn all the same: the other sensors' readings stay as they were
                item = {"sensor_code": spec.code, "metric": metric, "measured_at": at, "value": value}
                if spec.kind == "video_ai" and value >= SNAPSHOT_FROM:
                    item["media_url"] = f"{SNAPSHOTS}/{spec.code}/{at:%Y%m%d-%H%M}-{metric}.jpg"
                items.append(item)
        at += STEP
    # One day's batch at a time, in time order, as a gateway forwarding each day's readings would send them.
    per_day = len(items) // DAYS + 1
    for first in range(0, len(items), per_day):
        result = service.ingest(session, items=items[first : first + per_day], now=now)
        report.readings += result.stored
        report.alarms_raised += result.alarms_raised
        report.orders_opened += result.orders_opened
    report.alarms_open = len(service.list_alarms(session, active=True, limit=1000)[0])
    return report
