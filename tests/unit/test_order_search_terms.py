"""The full-text search's index terms (pure): what an order's text becomes, and what a query may require of it."""

from __future__ import annotations

import random

import pytest

from cityhub.workorders.search import (
    QueryTerms,
    fts_expression,
    order_search_terms,
    pg_tsquery,
    query_terms,
    terms,
    words,
)


def test_chinese_runs_become_bigrams_and_a_lone_character_itself() -> None:
    assert terms("水管漏水") == ["水管", "管漏", "漏水"]
    assert terms("漏水") == ["漏水"]
    assert terms("水") == ["水"]
    # Punctuation and spaces end a run: 街 stands alone, no bigram spans the comma.
    assert terms("嘉禾街，停车难") == ["嘉禾", "禾街", "停车", "车难"]
    assert terms("街 停") == ["街", "停"]


def test_latin_and_digit_words_stay_whole_and_lower_case() -> None:
    assert terms("WiFi信号差") == ["wifi", "信号", "号差"]
    assert terms("5G基站 110kV线路") == ["5g", "基站", "110kv", "线路"]
    assert terms("电话13800138000") == ["电话", "13800138000"]
    assert terms("room_12-b") == ["room", "12", "b"]  # underscore and dash separate words


def test_full_width_forms_are_read_as_their_nfkc_forms() -> None:
    assert terms("ＷＩＦＩ６　信号") == ["wifi6", "信号"]
    assert terms("１３８００１３８０００") == ["13800138000"]
    assert terms("（漏水）！！") == ["漏水"]


def test_nothing_to_index() -> None:
    assert terms(None) == [] and terms("") == [] and terms("！？…… ——") == []


def test_order_terms_are_distinct_and_never_span_two_fields() -> None:
    line = order_search_terms("噪音扰民", "夜间噪音", "嘉禾街")
    assert line.split() == ["噪音", "音扰", "扰民", "夜间", "间噪", "嘉禾", "禾街"]
    assert "民夜" not in line.split()  # the end of the title and the start of the content are apart
    assert order_search_terms(None, "", None) == ""


def test_the_number_is_among_the_terms_in_its_pieces() -> None:
    line = order_search_terms("噪音扰民", None, None, number="BY20261202-000123")
    assert line.split() == ["by20261202", "000123", "噪音", "音扰", "扰民"]


def test_query_terms_of_inner_and_edge_pieces() -> None:
    assert query_terms("漏水") == QueryTerms(("漏水",))
    assert query_terms("噪音扰民") == QueryTerms(("噪音", "音扰", "扰民"))
    # A lone character at an edge may be inside a longer run of the text (indexed as bigrams only).
    assert not query_terms("水") and not query_terms("a水")
    # A Latin word at the start may end a longer word; at the end it starts one (a prefix); inside it is whole.
    assert query_terms("5g基站") == QueryTerms(("基站",))
    assert query_terms("漏水wifi") == QueryTerms(("漏水",), ("wifi",))
    assert query_terms("漏水ab") == QueryTerms(("漏水",))  # too short a prefix: left to LIKE
    assert query_terms("漏a水") == QueryTerms(("a",))
    assert not query_terms("wifi") and not query_terms("！！")


def test_words_and_expressions() -> None:
    assert words("  嘉禾街 　停车\t难 ") == ["嘉禾街", "停车", "难"]
    found = [query_terms("漏水wifi"), query_terms("嘉禾")]
    assert fts_expression(found) == '"漏水" AND "wifi"* AND "嘉禾"'
    assert pg_tsquery(found) == "'漏水' & 'wifi':* & '嘉禾'"


ALPHABET = list("水管漏噪音扰民停车嘉禾街道小区") + list("ab5g") + ["WiFi", "１２", "，", " ", "-", "！"]


@pytest.mark.parametrize("seed", range(5))
def test_every_substring_of_a_text_finds_its_terms_in_the_text(seed: int) -> None:
    """What the index requires of a query is held by every text containing it: the index never loses an order
    that LIKE finds (the property the search's equality with LIKE rests on)."""
    rng = random.Random(seed)
    for _ in range(300):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 25)))
        held = set(order_search_terms(text, None, None).split())
        for _ in range(10):
            start = rng.randrange(len(text))
            sub = text[start : rng.randint(start + 1, len(text))]
            for word in words(sub):
                required = query_terms(word)
                assert set(required.whole) <= held, (text, word, required)
                for prefix in required.prefixes:
                    assert any(t.startswith(prefix) for t in held), (text, word, prefix)
