"""Correlation graph: periods, association measures, build, related queries, GraphML/JSON round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cityhub.analytics import correlation as cg
from cityhub.errors import NotFound, ValidationFailed


def test_periods() -> None:
    q = cg.parse_period("2026-Q3")
    assert (q.first, q.stop, q.label) == (date(2026, 7, 1), date(2026, 10, 1), "2026-Q3")
    assert cg.parse_period("2026-12").stop == date(2027, 1, 1)
    w = cg.parse_period("2026-W27")
    assert w.first.weekday() == 0 and (w.stop - w.first).days == 7
    assert cg.parse_period("2026-07-01..2026-07-03").stop == date(2026, 7, 4)
    assert cg.window_label(date(2026, 8, 15), "quarter") == "2026-Q3"
    with pytest.raises(ValidationFailed):
        cg.parse_period("last summer")
    start, _ = q.bounds()
    assert start.tzinfo is not None and start.hour == 16  # local midnight in Asia/Shanghai


def test_association_measures() -> None:
    lift, npmi = cg.association(10, 10, 10, 100)  # always together
    assert lift == pytest.approx(10) and npmi == pytest.approx(1.0)
    lift, npmi = cg.association(1, 10, 10, 100)  # independent
    assert lift == pytest.approx(1.0) and npmi == pytest.approx(0.0)
    assert cg.association(0, 10, 10, 100)[1] == -1.0
    assert cg.cooccurrence_p(10, 10, 10, 100) < 1e-10
    assert cg.cooccurrence_p(1, 10, 10, 100) > 0.5


def _fact(i: int, text: str, category: str, street: str, month: int, community: str = "张村社区") -> cg.OrderFact:
    return cg.OrderFact(
        id=i,
        created_at=datetime(2026, month, 10, 4, tzinfo=UTC),
        text=text,
        category=category,
        street=street,
        community=community,
    )


def _facts() -> list[cg.OrderFact]:
    facts = []
    i = 0
    for k in range(12):  # noise at night near a school, in 石井街道 in Q3
        facts.append(
            _fact(
                i := i + 1,
                f"丽发新城旁边工地夜间施工噪音扰民，学生无法休息{k}",
                "环境保护/环境污染/噪音污染",
                "石井街道",
                8,
            )
        )
    for k in range(12):  # water-logging affecting the elderly, elsewhere
        facts.append(
            _fact(i := i + 1, f"暴雨后积水严重，老人出行困难{k}", "农村农业/水利水电/防汛抗旱", "江高镇", 7, "水沥村")
        )
    for k in range(12):  # generic garbage everywhere
        street = "石井街道" if k % 2 else "江高镇"
        facts.append(_fact(i := i + 1, f"垃圾堆放无人清理{k}", "城乡建设/城市建设和市政管理/环境卫生", street, 8))
    for k in range(4):  # noise in 石井街道 in another quarter
        facts.append(_fact(i := i + 1, f"广场舞噪音扰民，居民投诉{k}", "环境保护/环境污染/噪音污染", "石井街道", 3))
    return facts


def test_a_place_named_with_words_in_front_is_one_node_with_the_place() -> None:
    texts = ["福荫二横路积水严重"] * 3 + ["一下雨福荫二横路积水严重"]
    facts = [_fact(i, text, "城乡建设/城市建设和市政管理/排水", "江高镇", 7) for i, text in enumerate(texts, 1)]
    assert "一下雨福荫二横路" in cg.places_of(facts[-1])  # the extractor's slip: 一下雨 ran into the name
    graph = cg.build_graph(facts, min_support=3).graph
    places = {n: d["count"] for n, d in graph.nodes(data=True) if d["kind"] == "place"}
    assert places["place:福荫二横路"] == 4 and not any("下雨" in n for n in places)
    assert graph.has_edge("place:福荫二横路", "category:排水")


def test_graph_nodes_and_edges() -> None:
    graph = cg.build_graph(_facts(), min_support=3)
    g = graph.graph
    assert g.graph["orders"] == 40
    assert g.nodes["keyword:噪音"]["kind"] == "keyword" and g.nodes["keyword:噪音"]["count"] == 16
    assert g.nodes["place:石井街道"]["level"] == "street"
    assert g.nodes["place:丽发新城"]["level"] == "estate"
    assert "group:学生" in g and "window:2026-08" in g
    edge = g.edges["keyword:噪音", "group:学生"]
    assert edge["count"] == 12 and edge["lift"] > 1 and 0 < edge["npmi"] <= 1
    # Negatively associated pairs are not edges.
    assert not g.has_edge("keyword:噪音", "keyword:积水")


def test_related_in_a_place_and_period_and_groups_of() -> None:
    graph = cg.build_graph(_facts())
    answer = graph.related("噪音", place="石井街道", period="2026-Q3")
    assert answer.query == ["keyword:噪音"] and answer.place == ["place:石井街道"]
    assert answer.universe == 18 and answer.matched == 12  # 12 noise + 6 garbage orders there in Q3
    names = [r.name for r in answer.items]
    assert "学生" in names and "施工" in names
    assert "垃圾" not in names  # no co-occurrence above chance
    assert all(r.lift > 1 and r.count >= 2 for r in answer.items)
    assert answer.items == sorted(answer.items, key=lambda r: (-r.npmi, -r.count, r.node))
    # In Q1 every order of the street is about noise: nothing co-occurs with it above chance there.
    spring = graph.related("噪音", place="石井街道", period="2026-Q1", min_count=1)
    assert (spring.universe, spring.matched, spring.items) == (4, 4, [])
    # Over the whole district, 广场舞 goes with noise.
    assert "广场舞" in [r.name for r in graph.related("噪音", min_count=1, top=50).items]

    groups = graph.groups_of("防汛抗旱")
    assert [r.name for r in groups.items] == ["老年人"]
    with pytest.raises(NotFound):
        graph.related("地铁")
    with pytest.raises(NotFound):
        graph.related("噪音", place="火星街道")
    with pytest.raises(ValidationFailed):
        graph.related("噪音", kind="colour")


def test_admin_prefixes_do_not_become_places() -> None:
    fact = cg.OrderFact(
        id=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        text="噪音\n白云区石井街张村社区丽发新城3栋",
        street="石井街道",
        community="张村社区居委会",
    )
    assert cg.places_of(fact) == ["石井街道", "张村社区", "丽发新城"]


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_export_round_trip(tmp_path: Path, suffix: str) -> None:
    graph = cg.build_graph(_facts())
    path = tmp_path / f"graph{suffix}"
    graph.write(path)
    back = cg.read_graph(path)
    assert set(back.nodes) == set(graph.graph.nodes)
    assert back.number_of_edges() == graph.graph.number_of_edges()
    a, b = "keyword:噪音", "group:学生"
    assert back.edges[a, b]["count"] == graph.graph.edges[a, b]["count"]
    assert back.nodes[a]["kind"] == "keyword"


def test_the_export_says_no_period_as_null() -> None:
    """An export of a graph built without a period said ``"period": ""`` — a period with an empty name — where
    JSON has null; GraphML, which has no null, leaves the attribute out."""
    whole = cg.build_graph(_facts())
    assert "period" in whole.to_json()["graph"] and whole.to_json()["graph"]["period"] is None
    assert 'attr.name="period"' not in whole.graphml() and 'attr.name="orders"' in whole.graphml()
    assert whole.graph.graph["period"] is None  # the graph itself keeps its attribute
    quarter = cg.build_graph(_facts(), period=cg.parse_period("2026-Q3"))
    assert quarter.to_json()["graph"]["period"] == "2026-Q3" and 'attr.name="period"' in quarter.graphml()


def test_the_export_is_the_same_whichever_order_the_orders_come_in() -> None:
    facts = _facts()
    first = cg.build_graph(facts).to_json()
    again = cg.build_graph(list(reversed(facts))).to_json()
    assert first == again and first["links"]
    assert all(link["source"] < link["target"] for link in first["links"])


def test_facts_from_a_demo_csv(tmp_path: Path) -> None:
    from cityhub.demo.generator import generate, write_csv

    path = tmp_path / "demo.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_csv(out, generate(60, seed=3, years=0.2, end=date(2026, 6, 30)))
    facts = cg.facts_from_table(path)
    assert len(facts) == 60
    assert all(f.street and f.street.endswith(("街道", "镇")) and f.category for f in facts)
    assert all(f.created_at.tzinfo is not None for f in facts)
    assert any((f.attributes or {}).get("scenario") for f in facts)


def test_pairs_are_counted_as_every_pair_of_every_order_would_count_them() -> None:
    """The sparse product counts what a Counter over each order's pairs counts, above the minimum support."""
    import random
    from collections import Counter
    from itertools import combinations

    rng = random.Random(7)
    words = ["噪音", "积水", "垃圾", "路灯", "停车", "施工", "油烟", "漏水", "电梯", "物业", "学校", "公交"]
    nodes = [f"keyword:{w}" for w in words]
    incidence = [frozenset(rng.sample(nodes, rng.randint(0, 7))) for _ in range(400)]
    node_count = Counter(x for held in incidence for x in held)
    pairs = Counter(p for held in incidence for p in combinations(sorted(held), 2))
    for min_support in (1, 3, 40, 100, 1000):
        expected = sorted((p, c) for p, c in pairs.items() if c >= min_support)
        assert cg._pair_counts(incidence, node_count, min_support) == expected
    assert cg._pair_counts([], Counter(), 3) == []


def test_an_orders_text_nodes_are_read_again_when_its_text_or_places_change() -> None:
    """Kept between builds by the order's id, never answered for another text, street or community."""
    first = _fact(9_000_001, "丽发新城工地夜间施工噪音扰民", "环境保护/环境污染/噪音污染", "石井街道", 8)
    nodes = cg.text_nodes(first)
    assert {"keyword:噪音", "place:丽发新城", "place:石井街道"} <= nodes
    assert cg.text_nodes(first) is nodes  # read once
    edited = cg.OrderFact(**{**{f: getattr(first, f) for f in first.__slots__}, "text": "嘉禾望岗路灯不亮"})
    assert "keyword:噪音" not in cg.text_nodes(edited) and "keyword:路灯" in cg.text_nodes(edited)
    moved = cg.OrderFact(**{**{f: getattr(edited, f) for f in edited.__slots__}, "street": "江高镇"})
    assert "place:江高镇" in cg.text_nodes(moved) and "place:石井街道" not in cg.text_nodes(moved)
    # A rebuilt graph counts the edited text, not the one read before.
    graph = cg.build_graph([first] * 3, min_support=1).graph
    assert "keyword:噪音" in graph
    assert "keyword:噪音" not in cg.build_graph([edited] * 3, min_support=1).graph
