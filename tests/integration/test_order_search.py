"""Full-text search of orders (全文检索) on both backends: the index finds what LIKE finds, stays in step with every
way an order's text is written, and is built by the migration over orders that were there before it."""

from __future__ import annotations

import random
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from cityhub import migrate
from cityhub.db import Base, make_engine
from cityhub.intake.bulk import write_orders
from cityhub.workorders import search, service
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderCreate, OrderFilter
from sql_helpers import selects_naming


def _create(session: Session, title: str, content: str, address: str | None = None, **extra: Any) -> Order:
    data = OrderCreate(channel="web", title=title, content=content, address=address, **extra)
    return service.create_order(session, data=data, actor=service.SYSTEM)[0]


def _found(session: Session, q: str, **filters: Any) -> list[int]:
    rows, _, _ = service.search_order_rows(session, filters=OrderFilter(q=q, **filters), columns=["id"], limit=1000)
    return [r["id"] for r in rows]


def _like(session: Session, q: str) -> list[int]:
    """What LIKE finds (the search's meaning, written apart): every word in the number, title, content or address,
    Latin letters in either case (PostgreSQL: ILIKE)."""
    like = "ILIKE" if session.get_bind().dialect.name == "postgresql" else "LIKE"
    clauses, params = [], {}
    for i, word in enumerate(q.split()):
        params[f"p{i}"] = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(" + " OR ".join(f"{c} {like} :p{i} ESCAPE '\\'" for c in ("number", "title", "content", "address")) + ")"
        )
    sql = f"SELECT id FROM orders WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, id DESC"
    return list(session.execute(text(sql), params).scalars())


def _check_index(session: Session, backend: str) -> None:
    """SQLite: FTS5's own check that the index holds exactly the terms of the orders table."""
    if backend == "sqlite":
        session.execute(text("INSERT INTO order_fts(order_fts, rank) VALUES ('integrity-check', 1)"))


def _uses_index(session: Session, backend: str, q: str) -> bool:
    with selects_naming(session.get_bind(), "FROM orders") as statements:
        _found(session, q)
    statement, parameters = statements[0]
    conn = session.connection()
    if backend == "sqlite":
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
        return "order_fts" in plan
    # A near-empty table is read whichever way is cheapest: ask for a plan that neither scans the table nor walks
    # another index (ORDER BY created_at would walk ix_orders_created), so the plan shows whether the condition
    # can use the search index (the expression must match the index's exactly).
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    conn.execute(text("SET LOCAL enable_indexscan = off"))
    plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    return search.PG_INDEX in plan


def test_finds_words_of_title_content_and_address(db_session: Session, db_backend: str) -> None:
    leak = _create(db_session, "水管漏水", "楼上卫生间漏水已经三天", "嘉禾街道望岗村12号")
    noise = _create(db_session, "夜间施工噪音扰民", "工地晚上十一点还在施工，WiFi6路由器都听不见", "京溪街")
    parking = _create(db_session, "乱停车", "小区门口停车堵塞消防通道", "嘉禾街道鹤龙一路")
    db_session.flush()
    assert _found(db_session, "漏水") == [leak.id]
    assert _found(db_session, "噪音扰民") == [noise.id]
    assert _found(db_session, "望岗村") == [leak.id]  # the address
    assert _found(db_session, "嘉禾街 停车") == [parking.id]  # every word, in any field
    assert _found(db_session, "停车 京溪") == []
    assert sorted(_found(db_session, "嘉禾街道")) == sorted([leak.id, parking.id])
    assert _found(db_session, "听不见wifi") == []  # not contiguous in the text
    # Latin letters in either case on both backends; full-width letters are other characters.
    assert _found(db_session, "wifi6路由器") == [noise.id]
    assert _found(db_session, "WIFI6") == [noise.id]
    assert _found(db_session, "WiFi6路由器") == [noise.id]
    assert _found(db_session, "ＷｉＦｉ6路由器") == []
    assert _found(db_session, "路由器") == [noise.id]
    assert _found(db_session, "水") == [leak.id]  # one character: LIKE over the table, as before
    assert _found(db_session, leak.number.lower()) == [leak.id]  # the number, exactly
    # A part of a number too, as LIKE finds it: the day's orders share the first part, the end is one order's.
    assert (
        _found(db_session, leak.number[:-2]) == _like(db_session, leak.number[:-2]) == [parking.id, noise.id, leak.id]
    )
    assert _found(db_session, leak.number[-4:]) == [leak.id]
    assert _uses_index(db_session, db_backend, leak.number[:-2])
    assert _uses_index(db_session, db_backend, "噪音扰民")
    _check_index(db_session, db_backend)


def test_a_phrase_across_two_fields_is_not_found(db_session: Session) -> None:
    order = _create(db_session, "噪音扰民", "夜间施工", "京溪街")
    db_session.flush()
    assert _found(db_session, "民夜") == [] == _like(db_session, "民夜")  # title's end + content's start
    assert _found(db_session, "工京溪") == [] == _like(db_session, "工京溪")
    assert _found(db_session, "扰民 夜间") == [order.id]  # as two words: each in its own field


def test_citizen_name_and_phone_exactly_for_those_who_may(db_session: Session) -> None:
    order = _create(db_session, "路灯不亮", "晚上路灯全灭", citizen_name="李雪梅", citizen_phone="13912345678")
    db_session.flush()
    assert _found(db_session, "李雪梅", q_citizen=True) == [order.id]
    assert _found(db_session, "139-1234-5678", q_citizen=True) == [order.id]
    assert _found(db_session, "李雪梅") == [] and _found(db_session, "13912345678") == []
    assert _found(db_session, "李雪", q_citizen=True) == []


VOCABULARY = [
    "漏水",
    "水管",
    "噪音",
    "扰民",
    "停车",
    "嘉禾",
    "街道",
    "小区",
    "路灯",
    "不亮",
    "垃圾",
    "清理",
    "施工",
    "水",
    "车",
    "街",
    "WiFi",
    "5G",
    "wifi6",
    "110kV",
    "2026",
    "１２３",
    "ＡＢ",
    "，",
    "！",
    " ",
    "-",
    "（",
    "）",
]


def _corpus(rng: random.Random) -> list[tuple[str, str, str | None]]:
    def text_of(n: int) -> str:
        return "".join(rng.choice(VOCABULARY) for _ in range(n)).strip() or "空"

    return [
        (text_of(rng.randint(1, 4)), text_of(rng.randint(3, 12)), text_of(3) if rng.random() < 0.6 else None)
        for _ in range(60)
    ]


@pytest.mark.parametrize(
    ("many", "common"), [(2000, 20000), (1, 20000), (1, 1)], ids=["few-candidates", "many", "common-word"]
)
def test_the_same_orders_as_like_on_a_generated_corpus(
    db_session: Session, db_backend: str, many: int, common: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random pieces of the texts (inside a field, across two fields, one character, Latin and full-width words,
    several words): the index-backed search finds exactly the orders LIKE finds, newest first, and counts them —
    whichever plan SQLite is given (from ``many`` candidates the newest orders are walked and looked up among them,
    from ``common`` on LIKE alone is checked)."""
    monkeypatch.setattr(search, "MANY_CANDIDATES", many)
    monkeypatch.setattr(search, "COMMON_CANDIDATES", common)
    # PostgreSQL: with a common word the statistics are asked (any share will do) instead of the index.
    monkeypatch.setattr(search, "COMMON_SHARE", 0.0 if common == 1 else search.COMMON_SHARE)
    monkeypatch.setattr(search, "_term_stats", {})
    rng = random.Random(20261202)
    corpus = _corpus(rng)
    for title, content, address in corpus:
        _create(db_session, title, content, address)
    db_session.commit()
    if db_backend == "postgresql":
        db_session.execute(text("ANALYZE orders"))
        db_session.execute(text("ANALYZE order_search"))  # the index's terms' statistics
    queries = ["水", "车", "wifi", "WiFi", "5g", "ab", "ＡＢ", "１２３", "123", "漏水 小区", "嘉禾 wifi", "漏水漏水"]
    for title, content, address in corpus:
        whole = f"{title}{content}{address or ''}"
        for _ in range(4):
            start = rng.randrange(len(whole))
            queries.append(whole[start : start + rng.randint(1, 8)])
    queries = [q for q in queries if q.strip()]
    indexed = 0
    for q in queries:
        expected = _like(db_session, q)
        assert _found(db_session, q) == expected, q
        _, _, total = service.search_order_rows(
            db_session, filters=OrderFilter(q=q), columns=["id"], limit=1, count=True
        )
        assert total == len(expected), q
        indexed += any(search.query_terms(w) for w in search.words(q))
    assert indexed > len(queries) // 2  # most of them went through the index
    _check_index(db_session, db_backend)


def test_postgresql_reads_few_candidates_by_id_and_counts_many_with_one_probe_per_order(
    db_session: Session, db_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few candidates: an array of their ids, so that the OR with the number stays a BitmapOr of index scans. Many,
    counted: IN (subquery), a hash probe per order — ANY of a large array is a linear search per order (a count of
    a word every order holds took over two minutes at 200,000)."""
    if db_backend != "postgresql":
        pytest.skip("PostgreSQL's plans")
    # Words no other test writes: on a database other tests filled, common words (缺失) are read by LIKE alone
    # (_pg_surely_common), which is not what this test looks at.
    for i in range(3):
        _create(db_session, f"鹈鹕雕塑褪色{i}", "湖畔鹈鹕雕塑褪色")
    db_session.commit()
    columns = Order.__table__.c

    def sql(*, counting: bool) -> str:
        condition = search.text_condition(db_session.connection(), "鹈鹕雕塑褪色", columns, counting=counting)
        return str(condition.compile(dialect=db_session.get_bind().dialect))

    assert "ANY (array(" in sql(counting=False) and "ANY (array(" in sql(counting=True)
    monkeypatch.setattr(search, "MANY_CANDIDATES", 2)
    counted = sql(counting=True)
    assert "ANY (" not in counted and "IN (SELECT order_id" in counted, counted
    _, _, total = service.search_order_rows(
        db_session, filters=OrderFilter(q="鹈鹕雕塑褪色"), columns=["id"], limit=1, count=True
    )
    assert total == 3


def test_changed_text_is_found_by_its_new_words_only(db_session: Session, db_backend: str) -> None:
    order = _create(db_session, "路灯不亮", "晚上路灯全灭")
    db_session.commit()
    order.content = "白天水管爆裂"
    order.address = "京溪街"
    db_session.commit()
    assert _found(db_session, "水管爆裂") == [order.id] and _found(db_session, "京溪街") == [order.id]
    assert _found(db_session, "路灯全灭") == []
    # A change of another column leaves the terms (and the index) as they are.
    service.act(db_session, order_id=order.id, action="comment", actor=service.SYSTEM, params={"text": "已记录"})
    db_session.commit()
    assert _found(db_session, "水管爆裂") == [order.id]
    _check_index(db_session, db_backend)
    db_session.delete(order)
    db_session.commit()
    assert _found(db_session, "水管爆裂") == []
    _check_index(db_session, db_backend)


def test_merged_orders_stay_found(db_session: Session) -> None:
    master = _create(db_session, "小区垃圾", "垃圾堆积无人清理")
    copy = _create(db_session, "小区垃圾堆积", "门口垃圾堆积三天")
    db_session.flush()
    service.act(db_session, order_id=copy.id, action="merge", actor=service.SYSTEM, params={"master_id": master.id})
    db_session.commit()
    assert _found(db_session, "垃圾堆积") == [copy.id, master.id]


def test_bulk_written_orders_are_found(db_session: Session, db_backend: str) -> None:
    records = [
        {
            "appeal_type": "complaint",
            "title": f"第{i}件：路面坑洼",
            "content": f"鹤龙一路{i}号门前路面坑洼",
            "address": "嘉禾街道",
        }
        for i in range(30)
    ]
    records.append({"appeal_type": "help", "title": "燃气味", "content": "楼道有燃气味道", "address": None})
    result = write_orders(db_session, records)
    db_session.commit()
    assert len(_found(db_session, "路面坑洼")) == 30
    assert _found(db_session, "燃气味道") == [result.ids[-1]]
    number = db_session.execute(text("SELECT number FROM orders WHERE id = :id"), {"id": result.ids[-1]}).scalar()
    stored = db_session.execute(text("SELECT terms FROM order_search WHERE order_id = :id"), {"id": result.ids[-1]})
    assert stored.scalar_one() == search.order_search_terms("燃气味", "楼道有燃气味道", None, number=number)
    assert _found(db_session, number.split("-")[-1]) == [result.ids[-1]]  # a part of its number
    _check_index(db_session, db_backend)
    if db_backend == "sqlite":  # indexed in one statement after the batch: the insert trigger works again after it
        assert db_session.execute(text(f"SELECT count(*) FROM {search.PAUSE_TABLE}")).scalar() == 0
    after = _create(db_session, "井盖缺失", "人行道井盖缺失")
    db_session.commit()
    assert _found(db_session, "井盖缺失") == [after.id]
    _check_index(db_session, db_backend)


def test_newest_holders_are_the_newest_within_the_ids_and_leave_the_planner_as_it_was(
    db_session: Session, db_backend: str
) -> None:
    """The telling words' lookup: for each term, the newest orders holding it from ``since_id`` on. On PostgreSQL it
    plans without plain index scans (a street's name, held by thousands of orders through their addresses, made it
    walk the primary key computing each row's tsvector) — for its own statements only: the transaction's setting is
    what it was after it, whatever that was."""
    ids = [_create(db_session, f"第{i}号", "楼下饭店油烟呛人", address="钟落潭镇").id for i in range(6)]
    other = _create(db_session, "路灯不亮", "晚上很黑").id
    db_session.flush()
    conn = db_session.connection()
    held = search.newest_holders(conn, ["油烟", "钟落", "路灯", "停水"], limit=3, since_id=ids[1])
    assert held == {"油烟": ids[:1:-1][:3], "钟落": ids[:1:-1][:3], "路灯": [other], "停水": []}
    if db_backend == "postgresql":
        assert conn.execute(text("SHOW enable_indexscan")).scalar_one() == "on"
        conn.execute(text("SET LOCAL enable_indexscan = off"))
        search.newest_holders(conn, ["油烟"], limit=3)
        assert conn.execute(text("SHOW enable_indexscan")).scalar_one() == "off"


def test_bad_search_text_is_a_clear_422(admin_client: Any) -> None:
    answer = admin_client.get("/api/v1/orders", params={"q": "漏\x00水"})
    assert answer.status_code == 422 and "q" in str(answer.json()["details"])
    assert admin_client.get("/api/v1/orders", params={"q": "x" * 101}).status_code == 422
    assert admin_client.get("/api/v1/orders", params={"q": '漏水 "OR" *'}).status_code == 200


# ------------------------------------------------------------------------------------------- migration, metadata

PREVIOUS = "0017_monitoring"
SEARCH = "0018_order_search"  # the migration that adds the index
TERMS_COLUMN = "0019_monitoring_escalation"  # the last with the terms in a column of orders
TERMS_TABLE = "0020_order_search_table"  # the migration that moves them to a table of their own


def _insert_before_search(engine: Engine, n: int, *, numbers: str = "OLD-{i:05d}") -> None:
    """Orders as a database at the previous migration holds them (no search terms yet)."""
    with engine.begin() as conn:
        for i in range(n):
            conn.execute(
                text(
                    "INSERT INTO orders (number, channel, appeal_type, title, content, address, urgency, state, "
                    "created_at, updated_at, sla_status, accept_overdue, extension_pending, extension_count, "
                    "urge_count, escalation_level, leader_assigned, return_count, reopen_count, instant_answered, "
                    "likes, opposes, version) VALUES (:number, 'web', 'complaint', :title, :content, :address, "
                    "'normal', 'received', :at, :at, 'none', false, false, 0, 0, 0, false, 0, 0, false, 0, 0, 1)"
                ),
                {
                    "number": numbers.format(i=i),
                    "title": "井盖缺失" if i % 3 == 0 else "路灯不亮",
                    "content": f"第{i}号楼前有安全隐患",
                    "address": "嘉禾街道" if i % 2 else None,
                    "at": "2026-01-01 00:00:00",
                },
            )


def _columns(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def test_the_migration_backfills_orders_from_before(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, PREVIOUS)
    engine = make_engine(empty_db_url)
    try:
        _insert_before_search(engine, 23)
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert len(_found(session, "井盖缺失")) == 8
            assert len(_found(session, "路灯不亮 嘉禾街道")) == 7
            assert _found(session, "井盖缺失") == _like(session, "井盖缺失")
            assert session.execute(text("SELECT count(*) FROM order_search")).scalar() == 23
            assert _found(session, "OLD-00007") == _found(session, "00007") == _like(session, "00007") != []
            assert _uses_index(session, engine.dialect.name, "井盖缺失")
            _check_index(session, engine.dialect.name)
        command.downgrade(migrate.alembic_config(empty_db_url), PREVIOUS)
        with engine.connect() as conn:
            names = _index_objects(conn)
            assert names == set(), names
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert len(_found(session, "井盖缺失")) == 8
    finally:
        engine.dispose()


def test_the_terms_move_out_of_the_orders_table(empty_db_url: str) -> None:
    """0020 copies the terms 0018 wrote where the number is plain (adding its pieces), computes the rest again,
    drops the column, and its downgrade gives the column back, filled."""
    migrate.upgrade(empty_db_url, PREVIOUS)
    engine = make_engine(empty_db_url)
    try:
        _insert_before_search(engine, 12)
        migrate.upgrade(empty_db_url, TERMS_COLUMN)
        _insert_before_search(engine, 7, numbers="旧单#{i}")  # computed again: not letters, digits and hyphens
        with engine.begin() as conn:
            conn.execute(text("UPDATE orders SET search_terms = NULL WHERE number = 'OLD-00000'"))  # and these
        with engine.connect() as conn:
            before = _index_objects(conn)
        with engine.begin() as conn:  # the column's drop, the migration's last step, fails
            conn.execute(text("CREATE VIEW terms_view AS SELECT search_terms FROM orders"))
        with pytest.raises(Exception, match=r"terms_view|depend"):  # half-way: nothing of it stays
            migrate.upgrade(empty_db_url)
        assert migrate.current(empty_db_url) == TERMS_COLUMN and "search_terms" in _columns(engine, "orders")
        with engine.begin() as conn:
            assert _index_objects(conn) == before != set()
            assert not inspect(conn).has_table("order_search")
            conn.execute(text("DROP VIEW terms_view"))
        migrate.upgrade(empty_db_url)
        assert "search_terms" not in _columns(engine, "orders")
        with Session(engine) as session:
            assert session.execute(text("SELECT count(*) FROM order_search")).scalar() == 19
            assert len(_found(session, "井盖缺失")) == 7 and len(_found(session, "路灯不亮 嘉禾街道")) == 6
            assert _found(session, "井盖缺失 OLD-00000") == _like(session, "井盖缺失 OLD-00000") != []
            assert _found(session, "旧单 安全隐患") == _like(session, "旧单 安全隐患") != []
            assert _found(session, "old") == _like(session, "old")  # LIKE's case: SQLite ignores it, PostgreSQL not
            assert _found(session, "00011") == _like(session, "00011") != []
            _check_index(session, engine.dialect.name)
        command.downgrade(migrate.alembic_config(empty_db_url), TERMS_COLUMN)
        assert "search_terms" in _columns(engine, "orders")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM orders WHERE search_terms IS NULL")).scalar() == 0
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("INSERT INTO order_fts(order_fts, rank) VALUES ('integrity-check', 1)")
        migrate.upgrade(empty_db_url)
        with Session(engine) as session:
            assert len(_found(session, "井盖缺失")) == 7
            _check_index(session, engine.dialect.name)
    finally:
        engine.dispose()


def _index_objects(conn: Any) -> set[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master "
            "WHERE name LIKE 'order_fts%' OR type = 'trigger' AND name LIKE '%search%'"
        )
    else:
        rows = conn.exec_driver_sql(
            "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE indexname IN (%s, 'ix_orders_search')",
            (search.PG_INDEX,),  # and 0018's, on orders
        )
    return set(rows.scalars())


def test_a_schema_from_the_models_has_the_same_index(empty_db_url: str, db_url: str) -> None:
    """``create_all`` (tools, throw-away databases) makes the index the migration makes."""
    engine = make_engine(empty_db_url)
    migrated = make_engine(db_url)
    try:
        if engine.dialect.name != migrated.dialect.name:
            pytest.skip("compared with the migrated database of the same backend")
        Base.metadata.create_all(engine)
        with engine.connect() as conn, migrated.connect() as other:
            assert _index_objects(conn) == _index_objects(other) != set()
        with Session(engine) as session:
            order = _create(session, "噪音扰民", "夜间施工噪音")
            session.commit()
            assert _found(session, "施工噪音") == [order.id]
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()
        migrated.dispose()


def test_the_command_line_searches_too(app_db: str, cli_run: Any) -> None:
    import json

    from cityhub.db import session_scope

    with session_scope() as s:
        first = _create(s, "噪音扰民", "夜间施工噪音").number
        _create(s, "路灯不亮", "晚上路灯全灭")
        second = _create(s, "施工噪音", "白天施工噪音扰民").number

    code, out, _ = cli_run("orders", "search", "施工噪音", "--count")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line.get("number") for line in lines[:-1]] == [second, first]  # newest first
    assert lines[-1] == {"total": 2}
    code, out, _ = cli_run("orders", "search", "施工 路灯")
    assert code == 0 and out == ""
    code, _, err = cli_run("orders", "search", "x" * 101)
    assert code == 1 and err.startswith("error: q:") and len(err.splitlines()) == 1, err
