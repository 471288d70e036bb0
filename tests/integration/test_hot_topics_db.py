"""Hot topics over the database: fit on the stored orders, persist topics, update incrementally with stable ids."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityhub.analytics.models import HotTopic, HotTopicModelState, HotTopicOrder
from cityhub.intake.importer import import_orders
from cityhub.workorders.models import Order

HEADER = ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "反对数", "点赞数"]
PROBLEMS = [
    ("丽发新城搅拌站噪音扰民", "A市A2区丽发新城小区旁边的搅拌站夜里作业，噪音粉尘严重影响居民休息。"),
    ("伊景园滨河苑捆绑销售车位", "伊景园滨河苑开发商要求购房者必须同时购买车位，否则不予签约。"),
    ("人才购房补贴迟迟未发放", "申请的A市人才新政购房补贴审核通过半年了，补贴款至今没有到账。"),
]
OTHER = ["东风路路灯不亮", "白沙村河道污染", "望月湖社区电梯故障", "黄花镇农田灌溉缺水", "星城花园物业乱收费"]


def _write(path: Path, start: int, days: int, per_problem: int) -> None:
    base = datetime(2019, 3, 1)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        n = start
        for title, content in PROBLEMS:
            for i in range(per_problem):
                n += 1
                at = base + timedelta(days=days + i * 3, hours=n % 12)
                w.writerow(
                    [
                        n,
                        f"U{n}",
                        title if i % 2 else f"反映{title}",
                        at.strftime("%Y/%m/%d %H:%M:%S"),
                        content + ("请尽快处理。" if i % 2 else ""),
                        0,
                        i,
                    ]
                )
        for title in OTHER:
            n += 1
            at = base + timedelta(days=days + n % 20)
            w.writerow([n, f"U{n}", title, at.strftime("%Y/%m/%d %H:%M:%S"), f"{title}，很久没人管。", 0, 0])


def _import(session: Session, path: Path) -> None:
    report = import_orders(session, path=path)
    assert report.imported > 0
    session.commit()


def test_db_mode_persists_topics_and_updates_incrementally(app_db: str, db_session: Session, tmp_path: Path) -> None:
    from cityhub.analytics.cli import app

    first = tmp_path / "first.csv"
    _write(first, start=0, days=0, per_problem=4)
    _import(db_session, first)
    runner = CliRunner()
    result = runner.invoke(app, ["hot-topics", "--format", "json", "--top", "10"])
    assert result.exit_code == 0, result.output
    topics = json.loads(result.stdout)
    assert len(topics) >= len(PROBLEMS)
    db_ids = {str(i) for i in db_session.scalars(select(Order.id))}
    for t in topics:
        assert set(t["order_ids"]) <= db_ids
    stored = {t.id: t.size for t in db_session.scalars(select(HotTopic))}
    assert stored == {t["id"]: t["size"] for t in topics}
    members = db_session.scalar(select(func.count()).select_from(HotTopicOrder))
    assert members == sum(t["size"] for t in topics)
    by_title = {t["id"]: t for t in topics}

    second = tmp_path / "second.csv"
    _write(second, start=1000, days=40, per_problem=2)
    _import(db_session, second)
    db_session.expire_all()
    again = runner.invoke(app, ["hot-topics", "--format", "json", "--top", "10"])
    assert again.exit_code == 0, again.output
    after = {t["id"]: t for t in json.loads(again.stdout)}
    # Every earlier topic keeps its id and its members, and has grown with the new orders of its problem.
    for tid, t in by_title.items():
        assert tid in after
        assert set(t["order_ids"]) <= set(after[tid]["order_ids"])
    assert sum(after[t]["size"] for t in by_title) > sum(t["size"] for t in by_title.values())
    state = db_session.scalars(select(HotTopicModelState)).one()
    assert state.last_order_id == max(int(i) for i in db_session.scalars(select(Order.id)))
