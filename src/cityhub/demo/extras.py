"""What makes the seeded demo usable at once: logins, a classifier, knowledge entries, routing rules, hot topics.

Every step is idempotent and cheap when already done, so a second ``make run`` changes nothing:

- **logins** — the demo users (``org/data/baiyun_users.csv`` and the per-unit handler accounts) get the demo
  password, only those without any password (a password someone set is kept);
- **classifier** — a category model trained with :func:`cityhub.nlp.classifier.train` on at most
  :data:`TRAIN_CAP` of the demo's own orders, written once (an existing artefact is kept);
- **knowledge base** — ``data/kb_demo.csv`` through :func:`cityhub.knowledge.service.import_entries`, only into a
  knowledge base without active entries (edits and deletions made later are not undone);
- **routing rules** — :func:`cityhub.dispatch.service.seed_default_rules`, only when no seeded rule exists yet;
- **monitoring** — :func:`cityhub.demo.sensors.seed_sensors`: sensors across the streets, alarm rules and three days
  of readings with a rainstorm whose alarms open orders, only when there are no sensors yet;
- **new appeals** — :func:`submit_new_appeals`: a dozen appeals of the last hours received through intake and left
  to the background dispatcher, so the dispatcher's queue and the automatic dispatch have something to show; a
  second run finds them received (channel + external id);
- **the demo citizens' own appeals** — :func:`citizens_appeals`: ``citizen`` and ``citizen2`` each filed two, one
  answered and waiting for their rating, one being worked or waiting for dispatch, only for an account without any;
- **the staff's work in hand** — :func:`staff_work`: :data:`STAFF_WORK`, appeals dispatched to the named handlers'
  units and taken as far as a supervisor needs to see (to accept, past the accept limit, near or past the deadline,
  an extension asked for, answered — one reply weak, one sound — for the callback desk and 答复审核) and one left for
  三元里街道's dispatcher, timed back from now in working hours; only once;
- **the replies checked** — :func:`cityhub.knowledge.service.check_pending_replies`, the ``reply-check`` job's work
  done at once, so that 答复审核 and 待回访's 答复偏弱 show what they are for before the job first runs;
- **the staff's bells** — :func:`demo_notices`: a supervisor's 催办 and an order returned (退单) to the dispatchers,
  beside the notices (消息) the steps above wrote as they went; only once;
- **hot topics** — :func:`cityhub.analytics.topics_store.mine_database` once, and again only after new orders.

All of it runs only with ``CITYHUB_ENVIRONMENT=demo``: known passwords never reach another environment.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from cityhub.config import DEMO_MODEL_DIR, Settings, get_settings
from cityhub.demo.sensors import SensorSeedReport, seed_sensors
from cityhub.errors import PermissionDenied, ValidationFailed

if TYPE_CHECKING:
    from cityhub.nlp.classifier import LabelledOrder
    from cityhub.workorders.schemas import OrderCreate

DATA_DIR = Path(__file__).parent / "data"
KB_CSV = DATA_DIR / "kb_demo.csv"
# The documented demo password (README "Demo logins"); CITYHUB_DEMO_PASSWORD replaces it.
DEFAULT_DEMO_PASSWORD = "cityhub-demo"
# Orders the demo classifier is trained on: enough for every demo category, seconds to train.
TRAIN_CAP = 2000
TRAIN_FOLDS = 2
MIN_TRAIN = 200  # fewer categorised orders than this: no classifier (a tiny seed, e.g. in tests of the CLI)
NEW_APPEALS = 12


class DemoSettings(BaseSettings):
    """The seeded demo district (only with CITYHUB_ENVIRONMENT=demo)."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", env_file=".env", extra="ignore")

    demo_password: str = Field(
        DEFAULT_DEMO_PASSWORD,
        description="Password `cityhub demo seed` gives the demo users that have none (demo environment only).",
    )


@dataclass(frozen=True)
class Login:
    username: str
    full_name: str
    role: str
    unit: str


@dataclass
class ExtrasReport:
    """What one :func:`prepare_demo` run did (zeros and ``False``: already there)."""

    passwords_set: int = 0
    password_from_env: bool = False
    logins: list[Login] = field(default_factory=list)
    unit_handlers: int = 0  # per-unit handler accounts (h<unit code>), not listed in ``logins``
    model_path: Path | None = None
    model_trained: bool = False
    model_records: int = 0
    model_seconds: float = 0.0
    model_in_use: bool = False  # the app's settings point at this model
    model_skipped: str = ""  # why no model was trained
    kb_created: int = 0
    kb_entries: int = 0
    rules_created: int = 0
    topics_mined: bool = False
    topics_skipped: str = ""  # why the hot topics were not mined
    topics: int = 0
    sensors: SensorSeedReport | None = None  # None: sensors were there already
    new_appeals: int = 0  # appeals just received, left to the background dispatcher (0: submitted before)
    citizen_appeals: int = 0  # the demo citizens' own appeals filed by this run (0: they had some)
    staff_work: int = 0  # appeals put in the demo staff's hands by this run (0: received before)
    track_example: tuple[str, str] | None = None  # (order number, phone) of a reply to look up on /track
    exemptions: int = 0  # assessment exemption requests (考核核减) made by this run (0: there were some)
    notices: int = 0  # staff notices (消息) written by demo_notices (0: an order was returned before)
    replies_checked: int = 0  # replies scored by the reply check at seed time (0: none waited)
    weak_replies: int = 0  # of them found weak (答复审核)
    seconds: dict[str, float] = field(default_factory=dict)


def require_demo_environment() -> None:
    """Refuse to run outside ``CITYHUB_ENVIRONMENT=demo``."""
    environment = get_settings().environment
    if environment != "demo":
        raise PermissionDenied(
            f"the demo district is only seeded with CITYHUB_ENVIRONMENT=demo (now: {environment}); "
            "it sets known passwords"
        )


def demo_password() -> tuple[str, bool]:
    """(password, whether it came from ``CITYHUB_DEMO_PASSWORD``)."""
    value = DemoSettings().demo_password
    return value, value != DEFAULT_DEMO_PASSWORD


# --- logins --------------------------------------------------------------------------------------------------


def _demo_usernames(session: Session) -> tuple[list[str], list[str]]:
    """(named demo users in file order, per-unit handler accounts) as ``seed_baiyun`` creates them."""
    from cityhub.org.models import Unit
    from cityhub.org.service import BAIYUN_USERS, read_csv_table

    named = [values["username"] for _, values in read_csv_table(BAIYUN_USERS).rows]
    handlers = [f"h{code.lower()}" for code in session.scalars(select(Unit.code))]
    return named, handlers


def set_demo_passwords(session: Session, *, password: str) -> int:
    """Give the demo users without a password ``password``; returns how many got it. Demo environment only."""
    require_demo_environment()
    from cityhub.auth import passwords
    from cityhub.org.models import User

    passwords.check_strength(password)
    named, handlers = _demo_usernames(session)
    users = list(session.scalars(select(User).where(User.username.in_(named + handlers), User.password_hash.is_(None))))
    if users:
        # One Argon2 hash for all of them: the password is the same and known, and ~50 hashes would cost seconds.
        hashed = passwords.hash_password(password)
        for user in users:
            user.password_hash = hashed
        session.flush()
    return len(users)


def demo_logins(session: Session) -> tuple[list[Login], int]:
    """The named demo users (file order), each with their unit's full name (白云区, 三元里街道: the README's table of
    demo logins), and the number of per-unit handler accounts."""
    from cityhub.org.models import Unit, User

    named, handlers = _demo_usernames(session)
    rows = {
        u.username: u
        for u in session.scalars(select(User).where(User.username.in_(named + handlers)))
        if u.password_hash is not None
    }
    units = {uid: name for uid, name in session.execute(select(Unit.id, Unit.name))}
    logins = [
        Login(
            username=name,
            full_name=rows[name].full_name,
            role=rows[name].role.value,
            unit=units.get(rows[name].unit_id or 0, ""),
        )
        for name in named
        if name in rows
    ]
    return logins, sum(1 for name in handlers if name in rows)


# --- classifier ----------------------------------------------------------------------------------------------


def model_target(model_dir: Path | None = None) -> Path:
    """Where the demo classifier goes: ``model_dir``, else the configured model path, else beside the database."""
    if model_dir is not None:
        return model_dir
    settings = get_settings()
    if settings.dispatch_model_path:
        return Path(settings.dispatch_model_path)
    return settings.demo_model_dir or Path("data") / DEMO_MODEL_DIR


def training_records(session: Session, *, cap: int = TRAIN_CAP) -> list[LabelledOrder]:
    """The first ``cap`` categorised orders (not merged or cancelled) as labelled records (category = full path)."""
    from cityhub.nlp.classifier import LabelledOrder
    from cityhub.workorders.lifecycle import State
    from cityhub.workorders.models import Category, Order

    rows = session.execute(
        select(Order.number, Order.title, Order.content, Category.path)
        .join(Category, Category.id == Order.category_id)
        .where(Order.state.not_in([State.MERGED, State.CANCELLED]))
        .order_by(Order.id)
        .limit(cap)
    ).all()
    return [
        LabelledOrder(id=number, title=title or "", content=content or "", category=path)
        for number, title, content, path in rows
    ]


def train_demo_model(session: Session, *, target: Path, cap: int = TRAIN_CAP) -> tuple[int, float]:
    """Train the category classifier on the demo's orders and save it to ``target``; (records, seconds)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from cityhub.nlp import classifier

    records = training_records(session, cap=cap)
    started = time.perf_counter()
    # One BLAS thread: the stacking regression is tiny, and on a busy machine OpenBLAS threads spin for seconds.
    # Each order is its own group: the demo's texts come from templates, and grouping near-duplicates would
    # put whole templates in one fold, leaving the stacker to learn from scores on texts it never saw.
    with threadpool_limits(limits=1, user_api="blas"):
        model = classifier.train(
            records,
            config=classifier.ClassifierConfig(folds=TRAIN_FOLDS),
            groups=np.arange(len(records)),
            evaluate_cv=False,
        )
    model.meta["demo"] = {"orders": len(records), "note": "trained by `cityhub demo seed` on generated orders"}
    model.save(target)
    return len(records), time.perf_counter() - started


# --- the whole preparation -----------------------------------------------------------------------------------


def with_point(session: Session, data: OrderCreate | dict[str, Any]) -> OrderCreate:
    """A demo appeal with a point on the map where intake will place it (``workorders.service.appeal_place``): near
    its community's demo point, else its street's (``corpus.point_near``, the generated orders' rule), as an app's
    position or the operator's map gives one — so the one map shows what the texts name. One that names no place,
    or already has a point, as it is. The point is stable for the appeal (its external id, else its content)."""
    from cityhub.demo import corpus
    from cityhub.org.service import unit_directory
    from cityhub.workorders.schemas import OrderCreate
    from cityhub.workorders.service import appeal_place

    appeal = data if isinstance(data, OrderCreate) else OrderCreate.model_validate(data)
    place = appeal_place(session, appeal) if appeal.lat is None else None
    if place is None or not place.placed:
        return appeal
    unit = unit_directory(session).get(place.community_id or place.street_id or 0)
    found = corpus.places_by_code().get(unit.code) if unit is not None else None
    if found is None:
        return appeal
    lat, lng = corpus.point_near(random.Random(f"cityhub-demo-point:{appeal.external_id or appeal.content}"), *found)
    return appeal.model_copy(update={"lat": lat, "lng": lng})


def submit_new_appeals(session: Session, *, count: int = NEW_APPEALS) -> int:
    """Receive :data:`NEW_APPEALS` appeals of the last hours through intake, as calls and messages arrive (see
    :meth:`DemoGenerator.new_appeals`): the background dispatcher of ``cityhub serve`` then decides each — sent to
    a unit when the classifier is sure enough, else waiting in the dispatcher's queue (待派单) with its
    suggestions. Returns how many were new (a second run finds them received)."""
    from cityhub.demo.generator import DemoGenerator
    from cityhub.intake.service import submit

    created = 0
    for data in DemoGenerator(0).new_appeals(count):
        created += submit(session, data=with_point(session, data), similar=False, defer_duplicates=True).created
    session.commit()
    return created


# The demo citizens' appeals: (channel, type, content, how far it went, the unit's reply). Places are real Baiyun
# streets, so intake places them and the first step goes to that street.
CITIZEN_APPEALS: dict[str, list[tuple[str, str, str, str, str | None]]] = {
    "citizen": [
        (
            "web",
            "complaint",
            "三元里街道松柏东街12号门口的路灯坏了一个多星期，晚上很黑，老人出门不方便，请尽快维修。",
            "reply",
            "经现场核查，该处路灯因线路老化不亮，已于今日更换线路并恢复照明。感谢您的反映。",
        ),
        (
            "app",
            "complaint",
            "三元里街道三元里大道楼下餐馆每晚十点后仍在排放油烟，噪音也大，影响休息。",
            "accept",
            None,
        ),
    ],
    "citizen2": [
        (
            "web",
            "suggestion",
            "建议在京溪街道云景路小学门口增设减速带和人行横道标线，上下学时段车速太快，孩子过马路不安全。",
            "reply",
            "您的建议已收悉。经与交警部门现场查勘，已在该路段施划人行横道标线，减速带将于本月内完成安装。",
        ),
        ("app", "complaint", "京溪街道云景路人行道地砖松动翘起，下雨天踩上去会溅水，老人容易摔倒。", "received", None),
    ],
}


def citizens_appeals(session: Session) -> int:
    """File :data:`CITIZEN_APPEALS` for the demo citizens who have none, through intake as their own, two working days
    ago, and take each as far as it says (dispatched to the street it is placed in within the working hour, accepted,
    replied a few working hours ago) — so a citizen's login shows appeals to follow, add files to and rate. Returns
    how many were filed. Every step is in working time: a reply stamped 02:30 would not convince anyone."""

    from cityhub.db import utcnow
    from cityhub.intake.service import submit
    from cityhub.org.models import Role, User
    from cityhub.workorders import calendar as workcal
    from cityhub.workorders import service as orders
    from cityhub.workorders.lifecycle import Action
    from cityhub.workorders.models import Order
    from cityhub.workorders.schemas import OrderCreate

    now = utcnow()
    cal = workcal.load_calendar(session)
    made = 0
    for username, appeals in CITIZEN_APPEALS.items():
        user = session.scalar(select(User).where(User.username == username, User.role == Role.CITIZEN))
        mine = select(func.count()).select_from(Order).where(Order.citizen_user_id == (user.id if user else None))
        if user is None or session.scalar(mine):
            continue
        citizen = orders.Actor(name=user.full_name, user_id=user.id, role=Role.CITIZEN.value)
        dispatcher = orders.Actor(
            name=session.scalar(select(User.full_name).where(User.username == "dispatcher")) or "派单员"
        )
        for i, (channel, appeal_type, content, reach, reply) in enumerate(appeals):
            filed = _worked_back(cal, now, 2 * cal.day_seconds + (3 - i) * 3600.0)
            data = OrderCreate(
                channel=channel,
                appeal_type=appeal_type,
                content=content,
                citizen_name=user.full_name,
                citizen_user_id=user.id,
                created_at=filed,
            )
            order = submit(session, data=with_point(session, data), actor=citizen, similar=False).order
            made += 1
            if reach == "received" or order.street_id is None:
                continue
            street = order.street_id
            handler = orders.Actor(name="街道承办人", unit_id=street, role=Role.HANDLER.value)
            steps: list[tuple[Action, Any, dict[str, Any], Any]] = [
                (Action.DISPATCH, dispatcher, {"unit_id": street}, cal.add_work_seconds(filed, 20 * 60.0))
            ]
            steps.append((Action.ACCEPT, handler, {}, cal.add_work_seconds(filed, 2 * 3600.0)))
            if reach == "reply":
                steps.append((Action.REPLY, handler, {"text": reply}, _worked_back(cal, now, 3 * 3600.0)))
            for action, actor, params, at in steps:
                orders.act(session, order_id=order.id, action=action, actor=actor, params=params, now=at)
    session.commit()
    return made


@dataclass(frozen=True)
class StaffCase:
    """One appeal in a demo staff member's hands: received through intake, taken by the staff as far as ``reach``.

    ``used``: the share of its time limit gone at seed time — of the accept limit (签收) while ``reach`` is
    ``dispatched``, else of the finishing limit (办结) — so 0.9 is a warning (预警) and 1.2 overdue (超期) whenever
    ``demo seed`` runs. ``reach``: ``received`` (waiting in the dispatcher's queue), ``dispatched`` (waiting to be
    accepted), ``in_progress`` (accepted and being worked), ``extension`` (being worked, more days asked for),
    ``replied`` (answered with ``reply``, waiting for the callback). ``assist``: the code of a unit the handler asks
    for help (增加协办, with ``assist_reason``) once the case is being worked — the order waits on its answer.
    """

    key: str  # external id suffix: a second run finds the appeal received
    unit: str  # code of the unit that takes it; "" for an appeal still waiting for dispatch
    handler: str  # demo username acting for the unit
    channel: str
    appeal_type: str
    category: str
    title: str
    content: str
    address: str
    reach: str
    used: float
    reply: str = ""  # the unit's reply, for ``reach`` ``replied``
    assist: str = ""  # code of a unit asked to assist (协办), for ``reach`` ``in_progress``
    assist_reason: str = ""  # what help is asked of it


# The demo staff's work in hand (the generated history's open orders are few and scattered over ~450 units): the
# named handlers' units each have an order to accept and one being worked, the supervisor an order not accepted in
# time, one near its deadline, one overdue and an extension to decide, and 三元里街道's own dispatcher an appeal.
STAFF_WORK: tuple[StaffCase, ...] = (
    StaffCase(
        "vendors",
        "440111-D02",
        "handler",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/城管执法",
        "三元里大道菜市场路口流动摊贩占道经营",
        "每天傍晚五点以后，三元里大道菜市场路口有十几个流动摊贩占用人行道摆卖，行人只能走机动车道，很危险，请城管处理。",
        "白云区三元里大道菜市场路口",
        "dispatched",
        0.4,
    ),
    StaffCase(
        "shed",
        "440111-D02",
        "handler",
        "web",
        "report",
        "城乡建设/城乡规划/违章建筑",
        "松洲街道螺涌北路商铺在人行道上搭建铁皮棚",
        "螺涌北路一家汽修店在门口人行道上搭了铁皮棚，把整段人行道围起来修车，已经一个多月了。",
        "白云区松洲街道螺涌北路",
        "dispatched",
        1.5,
    ),
    StaffCase(
        "bbq",
        "440111-D02",
        "handler",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/城管执法",
        "西槎路夜宵档露天烧烤油烟扰民",
        "同德街道西槎路几家夜宵档每晚在店外露天烧烤到凌晨两点，油烟和吵闹声直冲楼上住户，投诉过几次仍未改善。",
        "白云区同德街道西槎路",
        "in_progress",
        0.9,
    ),
    StaffCase(
        "billboard",
        "440111-D02",
        "handler",
        "grid",
        "report",
        "城乡建设/城市建设和市政管理/城管执法",
        "广园中路沿街商铺广告牌松动",
        "巡查发现广园中路景泰段沿街商铺一块大型广告牌支架锈蚀松动，刮风时晃动，下方是公交站，存在坠落隐患。",
        "白云区景泰街道广园中路",
        "in_progress",
        1.2,
    ),
    StaffCase(
        "rooftop",
        "440111-D02",
        "handler",
        "hotline",
        "report",
        "城乡建设/城乡规划/违章建筑",
        "云景路住宅楼顶加建违章建筑",
        "京溪街道云景路一栋住宅楼顶层住户在天台加建两层砖房，施工时掉落砖块，邻居担心楼板承重安全。",
        "白云区京溪街道云景路",
        "extension",
        0.7,
    ),
    StaffCase(
        "night-works",
        "440111-D01",
        "dept_handler",
        "app",
        "complaint",
        "环境保护/环境污染/噪音污染",
        "东平村在建工地夜间施工噪音",
        "永平街道东平村旁边的在建楼盘工地连续一周晚上十一点后还在打桩，噪音很大，小孩没法睡觉。",
        "白云区永平街道东平村",
        "dispatched",
        0.3,
    ),
    StaffCase(
        "hoarding",
        "440111-D01",
        "dept_handler",
        "hotline",
        "complaint",
        "城乡建设/建筑市场/勘察设计和施工监管",
        "望岗旧改工地围挡破损泥沙外溢",
        "嘉禾街道望岗旧改工地的围挡倒了一段，泥沙和积水流到马路上，车辆经过溅得行人一身泥。",
        "白云区嘉禾街道望岗",
        "in_progress",
        0.4,
    ),
    StaffCase(
        "outages",
        "440111-E01",
        "enterprise_handler",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/电力供应",
        "方石村一周内三次停电",
        "人和镇方石村这一周停了三次电，每次两三个小时，没有任何通知，家里冰箱的东西都坏了，请供电部门查明原因。",
        "白云区人和镇方石村",
        "dispatched",
        0.5,
    ),
    StaffCase(
        "stairwell",
        "",
        "street_dispatcher",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/城管执法",
        "松柏东街居民楼楼道堆放杂物",
        "三元里街道松柏东街一栋居民楼的楼道里堆满了纸箱和旧家具，堵住了消防通道，跟物业说了也没人管。",
        "白云区三元里街道松柏东街",
        "received",
        0.0,
    ),
    # Two answers waiting for the callback: one the reply check finds weak (a forwarding note, no answer: 答复审核
    # sends it back), one it finds sound.
    StaffCase(
        "drain",
        "440111002",
        "street_handler",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/环境卫生",
        "机场路三元里段排水渠堵塞发臭",
        "三元里街道机场路旁边的排水渠堵了半个月，污水漫到人行道上，气味很臭，蚊虫很多，请尽快清理疏通。",
        "白云区三元里街道机场路",
        "replied",
        0.6,
        "已转相关部门跟进处理。",
    ),
    StaffCase(
        "bins",
        "440111002",
        "street_handler",
        "app",
        "complaint",
        "城乡建设/城市建设和市政管理/环境卫生",
        "三元里大道公交站旁垃圾桶满溢无人清运",
        "三元里大道公交站旁边的几个垃圾桶已经两天没人清运，垃圾堆到地上，天热发臭，等车的人都捂着鼻子。",
        "白云区三元里街道三元里大道",
        "replied",
        0.4,
        "经现场核查，三元里大道公交站旁垃圾桶因收运车辆故障两日未清运，已于当日下午全部清运完毕，并对站点周边冲洗消毒；"
        "已要求环卫公司将该点位每日收运增至两次，街道城管科每周巡查。",
    ),
    # One order with an assisting unit (协办): the street works it and has asked the district's urban-management
    # bureau to help — the bureau's handler has it to accept, the centre's 协办 tab lists it.
    StaffCase(
        "awning",
        "440111002",
        "street_handler",
        "hotline",
        "complaint",
        "城乡建设/城市建设和市政管理/城管执法",
        "松柏东街商铺违规搭建雨棚占用人行道",
        "三元里街道松柏东街几家商铺在门口私自搭了铁皮雨棚，把人行道占了一大半，行人只能走到机动车道上，很危险，请处理。",
        "白云区三元里街道松柏东街",
        "in_progress",
        0.3,
        assist="440111-D02",
        assist_reason="商铺违规搭建雨棚属违法建设，需区城管执法局协助依法认定并督促拆除，街道负责现场劝导和后续巡查。",
    ),
)
STAFF_WORK_PREFIX = "demo-staff-"


def _worked_back(cal: Any, now: datetime, seconds: float) -> datetime:
    """The instant from which ``seconds`` of working time have passed by ``now`` (the latest such instant)."""
    if seconds <= 0:
        return now
    lo, hi = now - timedelta(days=60), now
    for _ in range(60):  # bisection to well under a second: the working time since t falls as t rises
        mid = lo + (hi - lo) / 2
        if cal.work_seconds_between(mid, now) > seconds:
            lo = mid
        else:
            hi = mid
    return hi


def _caller(case: StaffCase) -> tuple[str | None, str | None]:
    """The name and phone a citizen's appeal of ``case`` was taken with (the callback desk calls the phone back; the
    citizen looks the order up on /track with it) — the same on every seed, none for a grid inspector's report."""
    from cityhub.demo import corpus

    if case.channel == "grid":
        return None, None
    rng = random.Random(STAFF_WORK_PREFIX + case.key)
    surname = rng.choice(corpus.SURNAMES)
    name = surname + rng.choice(("先生", "女士")) if rng.random() < 0.5 else surname + rng.choice(corpus.GIVEN)
    return name, f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"


def staff_work(session: Session, *, now: datetime | None = None) -> int:
    """Receive :data:`STAFF_WORK` through intake (categorised, as an operator does) and take each case as far as it
    says, in working time, so that at seed time each named handler's open orders, the supervisor's filters (签收超时,
    预警, 超期, 待审批延期) and 三元里街道's dispatch queue hold something. Only when none was received before; marks
    the time limits at once (the SLA sweep's job). Returns how many were received."""
    from cityhub.db import utcnow
    from cityhub.intake.service import submit
    from cityhub.org.models import Unit, User
    from cityhub.workorders import calendar as workcal
    from cityhub.workorders import service as orders
    from cityhub.workorders import sla
    from cityhub.workorders.categories import find_category
    from cityhub.workorders.lifecycle import Action, State
    from cityhub.workorders.models import Order
    from cityhub.workorders.scheduled import sla_sweep
    from cityhub.workorders.schemas import OrderCreate

    now = now or utcnow()
    done = select(func.count()).select_from(Order).where(Order.external_id.like(f"{STAFF_WORK_PREFIX}%"))
    if session.scalar(done):
        return 0
    users = {
        u.username: u
        for u in session.scalars(
            select(User).where(User.username.in_(["dispatcher", "operator"] + [case.handler for case in STAFF_WORK]))
        )
    }
    units = {code: unit_id for code, unit_id in session.execute(select(Unit.code, Unit.id))}
    if "dispatcher" not in users or "operator" not in users:
        return 0
    cal = workcal.load_calendar(session)

    def actor(username: str) -> orders.Actor:
        return orders.Actor.of_user(users[username])

    made = 0
    for case in STAFF_WORK:
        unit_id = units.get(case.unit) if case.unit else None
        if case.unit and (unit_id is None or case.handler not in users):
            continue
        category = find_category(session, name_or_path=case.category)
        terms = sla.terms_for(session, category_id=category.id if category else None, urgency="normal")
        if case.reach == "dispatched":
            dispatched = _worked_back(cal, now, case.used * terms.accept_hours * 3600.0)
        else:
            dispatched = _worked_back(cal, now, case.used * terms.finish_days * cal.day_seconds)
        received = dispatched - timedelta(minutes=25) if case.reach != "received" else now - timedelta(minutes=40)
        citizen_name, citizen_phone = _caller(case)
        data = OrderCreate(
            channel=case.channel,
            external_id=STAFF_WORK_PREFIX + case.key,
            appeal_type=case.appeal_type,
            title=case.title,
            content=case.content,
            address=case.address,
            category=case.category,
            citizen_name=citizen_name,
            citizen_phone=citizen_phone,
            created_at=received,
        )
        result = submit(session, data=with_point(session, data), actor=actor("operator"), similar=False)
        made += int(result.created)
        order = result.order
        if not result.created or case.reach == "received" or order.state != State.RECEIVED:
            continue
        handler = actor(case.handler)
        working = cal.work_seconds_between(dispatched, now)
        steps: list[tuple[Action, orders.Actor, dict[str, Any], datetime]] = [
            (Action.DISPATCH, actor("dispatcher"), {"unit_id": unit_id}, dispatched)
        ]
        if case.reach in ("in_progress", "extension", "replied"):
            steps.append((Action.ACCEPT, handler, {}, cal.add_work_seconds(dispatched, min(3600.0, working * 0.1))))
            steps.append((Action.START, handler, {}, cal.add_work_seconds(dispatched, min(2 * 3600.0, working * 0.2))))
        if case.assist and units.get(case.assist) is not None:
            params = {"unit_id": units[case.assist], "reason": case.assist_reason}
            steps.append((Action.ADD_ASSIST, handler, params, cal.add_work_seconds(dispatched, working * 0.5)))
        if case.reach == "replied":
            steps.append((Action.REPLY, handler, {"text": case.reply}, cal.add_work_seconds(dispatched, working * 0.9)))
        if case.reach == "extension":
            reason = "涉及业主拆除协商和安全鉴定，需协调街道、住建部门联合执法，申请延期。"
            asked = cal.add_work_seconds(dispatched, working * 0.9)
            steps.append((Action.REQUEST_EXTENSION, handler, {"days": 5, "reason": reason}, asked))
        for action, who, params, at in steps:
            orders.act(session, order_id=order.id, action=action, actor=who, params=params, now=min(at, now))
    sla_sweep(session, now=now)
    session.commit()
    return made


# 考核核减 the demo shows: (reason, words, measure wanted, decision: None pending, True approved, False rejected).
DEMO_EXEMPTIONS: tuple[tuple[str, str, str, bool | None], ...] = (
    (
        "unreachable",
        "回访前三次致电（上午、下午、晚上）均无人接听，短信亦未回复，通话记录已留存。",
        "satisfaction",
        None,
    ),
    ("unrelated_rating", "市民不满意的是小区物业收费标准，与本次路灯维修的答复无关。", "satisfaction", None),
    ("force_majeure", "台风“海葵”红色预警期间全区停止户外作业，维修顺延。", "on_time_completion", None),
    ("unreasonable", "诉求为要求拆除合法审批的通信基站，超出政策范围，已做好解释。", "satisfaction", True),
    ("not_own_duty", "该事项属供电局职责，派单错误后退回重派致超时，非本单位原因。", "on_time_completion", True),
    ("other", "市民已搬离，现住户表示不知情。", "on_time_completion", False),
)


def demo_exemptions(session: Session, *, now: datetime | None = None) -> int:
    """A few requests of handlers that an answered order not count against their unit (:data:`DEMO_EXEMPTIONS`):
    pending ones for the supervisor's 核减审核, approved ones that the units' assessment pages show as 已核减, a
    rejected one. Only when there are none; returns how many were made."""
    from cityhub.analytics import exemptions
    from cityhub.analytics.models import AssessmentExemption
    from cityhub.db import utcnow
    from cityhub.org.models import Role, User
    from cityhub.workorders import service as orders
    from cityhub.workorders.lifecycle import State
    from cityhub.workorders.models import Order

    if session.scalar(select(func.count()).select_from(AssessmentExemption)):
        return 0
    now = now or utcnow()
    supervisor = session.scalar(select(User).where(User.username == "supervisor"))
    handlers = {
        u.unit_id: u
        for u in session.scalars(
            select(User).where(User.role == Role.HANDLER, User.unit_id.is_not(None)).order_by(User.id)
        )
    }
    if supervisor is None or not handlers:
        return 0
    named = session.scalar(select(User).where(User.username == "handler"))  # the demo's handler login: its unit first
    if named is not None and named.unit_id is not None:
        handlers[named.unit_id] = named

    answered = (State.CALLED_BACK, State.CLOSED_RESOLVED, State.CLOSED_UNRESOLVED, State.REPLIED)
    candidates = session.execute(
        select(Order.id, Order.lead_unit_id, Order.replied_at)
        .where(
            Order.state.in_(answered),
            Order.lead_unit_id.in_(sorted(handlers)),
            Order.replied_at.is_not(None),
            Order.replied_at > now - timedelta(days=45),
        )
        .order_by(Order.replied_at.desc(), Order.id.desc())
        .limit(400)
    ).all()
    if named is not None:
        candidates = sorted(candidates, key=lambda c: c[1] != named.unit_id)  # stable: the latest replies first
    made, units_used = 0, set[int]()
    for reason, words, wanted, decision in DEMO_EXEMPTIONS:
        for order_id, unit_id, replied_at in candidates:
            if unit_id is None or replied_at is None:
                continue
            if unit_id in units_used and len(units_used) < len(handlers):
                continue  # spread over the units, while there are others
            open_ = exemptions.measures_open(session, order_id=order_id, unit_id=unit_id)
            if wanted not in open_ or exemptions.open_request(session, order_id=order_id, unit_id=unit_id):
                continue
            asked_at = min(now - timedelta(hours=2), replied_at + timedelta(days=1))
            row = exemptions.request(
                session,
                order_id=order_id,
                measures=[wanted],
                reason_category=reason,
                reason_text=words,
                actor=orders.Actor.of_user(handlers[unit_id]),
                now=asked_at,
            )
            if decision is not None:
                why = "经核实，情况属实，同意核减。" if decision else "未提供联系记录等证明材料，不予核减。"
                exemptions.decide(
                    session,
                    exemption_id=row.id,
                    approve=decision,
                    reason=why,
                    actor=orders.Actor.of_user(supervisor),
                    now=min(now - timedelta(hours=1), asked_at + timedelta(hours=20)),
                )
            units_used.add(unit_id)
            made += 1
            candidates = [c for c in candidates if c[0] != order_id]
            break
    session.commit()
    return made


def demo_notices(session: Session, *, now: datetime | None = None) -> int:
    """The staff's bells (消息): the other steps wrote notices as they went — the orders dispatched to the demo
    handlers, the extension asked of the supervisor, the exemptions decided, the alarms of the sensors' units —; this
    adds a supervisor's 催办 of the ``handler``'s order being worked and, for the dispatchers' bells, an order of
    三元里街道 returned (退单) by the unit it was sent to, when the history has one waiting to be signed for. Only when
    no notice of an order urged or returned exists; returns how many notices it wrote."""
    from cityhub.db import utcnow
    from cityhub.notify.models import NoticeKind, UserNotice
    from cityhub.org.models import Role, User
    from cityhub.workorders import service as orders
    from cityhub.workorders.lifecycle import Action, State
    from cityhub.workorders.models import Order

    mine = (NoticeKind.RETURNED.value, NoticeKind.URGED.value)
    if session.scalar(select(UserNotice.id).where(UserNotice.kind.in_(mine)).limit(1)):
        return 0
    now = now or utcnow()
    before = int(session.scalar(select(func.count()).select_from(UserNotice)) or 0)
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(DEMO_NOTICE_USERS)))}

    supervisor, handler, dispatcher = (users.get(n) for n in DEMO_NOTICE_USERS)
    if supervisor is not None and handler is not None:
        worked = session.scalar(
            select(Order.id)
            .where(
                Order.external_id.like(f"{STAFF_WORK_PREFIX}%"),
                Order.lead_unit_id == handler.unit_id,
                Order.state == State.IN_PROGRESS,
            )
            .order_by(Order.id)
            .limit(1)
        )
        if worked is not None:
            reason = "市民再次来电反映，请今天内联系市民并反馈处理进展。"
            orders.act(
                session,
                order_id=worked,
                action=Action.URGE,
                actor=orders.Actor.of_user(supervisor),
                params={"reason": reason},
                now=now,
            )
    if dispatcher is not None and dispatcher.unit_id is not None:
        # An order of the street waiting to be signed for by a unit with a handler account, not a staff-work one (the
        # supervisor's cases stay as they are).
        handlers = select(User.unit_id).where(User.role == Role.HANDLER, User.active.is_(True))
        waiting = session.execute(
            select(Order.id, Order.lead_unit_id)
            .where(
                Order.state == State.DISPATCHED,
                Order.street_id == dispatcher.unit_id,
                Order.lead_unit_id.in_(handlers),
                or_(Order.external_id.is_(None), Order.external_id.not_like(f"{STAFF_WORK_PREFIX}%")),
            )
            .order_by(Order.id.desc())
            .limit(1)
        ).first()
        if waiting is not None:
            returner = session.scalar(
                select(User).where(User.role == Role.HANDLER, User.unit_id == waiting[1]).order_by(User.id).limit(1)
            )
            if returner is not None:
                reason = "经现场核实，该问题不属于本单位职责范围，请重新派单。"
                orders.act(
                    session,
                    order_id=waiting[0],
                    action=Action.RETURN,
                    actor=orders.Actor.of_user(returner),
                    params={"reason": reason},
                    now=now,
                )
    session.commit()
    return int(session.scalar(select(func.count()).select_from(UserNotice)) or 0) - before


# Who acts in :func:`demo_notices`: the supervisor urging, the handler whose order is urged, the street's dispatcher
# whose street's order comes back.
DEMO_NOTICE_USERS = ("supervisor", "handler", "street_dispatcher")


def track_example(session: Session) -> tuple[str, str] | None:
    """(number, phone) of the latest replied order with a phone and no rating yet: what a caller types on the
    progress lookup (办理进度查询, ``/track``) to see the reply and rate it."""
    from cityhub.workorders.lifecycle import State
    from cityhub.workorders.models import Order

    row = session.execute(
        select(Order.number, Order.citizen_phone)
        .where(Order.state == State.REPLIED, Order.citizen_phone.is_not(None), Order.satisfied.is_(None))
        .order_by(Order.replied_at.desc(), Order.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None and row[1] else None


def prepare_demo(
    factory: sessionmaker[Session],
    *,
    new_orders: bool = False,
    model_dir: Path | None = None,
    password: str | None = None,
) -> ExtrasReport:
    """Make the seeded demo usable (see the module docstring); each step commits on its own.

    ``new_orders``: orders were added by this run, so the hot topics take them in. ``password`` overrides
    ``CITYHUB_DEMO_PASSWORD`` (tests).
    """
    require_demo_environment()
    from cityhub.analytics import topics_store
    from cityhub.dispatch.models import DispatchRule
    from cityhub.dispatch.service import seed_default_rules
    from cityhub.knowledge import service as kb
    from cityhub.knowledge.models import KnowledgeEntry
    from cityhub.workorders.models import Order

    report = ExtrasReport()
    if password is None:
        password, report.password_from_env = demo_password()

    def timed(step: str, started: float) -> None:
        report.seconds[step] = round(time.perf_counter() - started, 2)

    with factory() as session:
        t = time.perf_counter()
        report.passwords_set = set_demo_passwords(session, password=password)
        session.commit()
        report.logins, report.unit_handlers = demo_logins(session)
        timed("logins", t)

        t = time.perf_counter()
        if not session.scalar(select(func.count()).select_from(DispatchRule).where(DispatchRule.seed_key.is_not(None))):
            report.rules_created = seed_default_rules(session).get("created", 0)
            session.commit()
        timed("rules", t)

        t = time.perf_counter()
        active = select(func.count()).select_from(KnowledgeEntry).where(KnowledgeEntry.active.is_(True))
        if not session.scalar(active):
            result = kb.import_entries(session, path=KB_CSV)
            if result.rejected:
                raise ValidationFailed(f"bundled demo knowledge base is invalid: {result.rejected[0]}")
            report.kb_created = result.created
            session.commit()
        report.kb_entries = int(session.scalar(active) or 0)
        timed("knowledge", t)

        t = time.perf_counter()
        seeded = seed_sensors(session)
        if seeded.sensors:
            report.sensors = seeded
            session.commit()
        timed("monitoring", t)

        t = time.perf_counter()
        target = model_target(model_dir)
        report.model_path = target
        if not (target / "model.json").is_file():
            labelled = len(training_records(session, cap=MIN_TRAIN))
            if labelled < MIN_TRAIN:
                report.model_skipped = f"only {labelled} categorised orders (at least {MIN_TRAIN} needed)"
            else:
                report.model_records, report.model_seconds = train_demo_model(session, target=target)
                report.model_trained = True
        configured = Settings().dispatch_model_path  # read afresh: the demo default exists once the model does
        report.model_in_use = configured is not None and Path(configured).resolve() == target.resolve()
        timed("classifier", t)

        t = time.perf_counter()
        report.new_appeals = submit_new_appeals(session)
        timed("new_appeals", t)

        t = time.perf_counter()
        report.citizen_appeals = citizens_appeals(session)
        timed("citizen_appeals", t)

        t = time.perf_counter()
        report.staff_work = staff_work(session)
        report.track_example = track_example(session)
        timed("staff_work", t)

        t = time.perf_counter()
        checked = kb.check_pending_replies(session)
        report.replies_checked, report.weak_replies = checked["checked"], checked["weak"]
        timed("reply_checks", t)

        t = time.perf_counter()
        report.exemptions = demo_exemptions(session)
        timed("exemptions", t)

        t = time.perf_counter()
        report.notices = demo_notices(session)
        timed("notices", t)

        t = time.perf_counter()
        if new_orders or not topics_store.stored_topic_count(session):
            orders = int(session.scalar(select(func.count()).select_from(Order)) or 0)
            if orders > topics_store.FIRST_FIT_LIMIT:
                report.topics_skipped = f"{orders} orders: run `cityhub analytics hot-topics` to mine them"
            else:
                topics_store.mine_database(session)
                session.commit()
                report.topics_mined = True
        report.topics = topics_store.stored_topic_count(session)
        timed("hot_topics", t)
    return report
