"""A district's address library (地名别名) in the gazetteer: names of their unit in full, and nothing else changed —
the packaged gazetteer (``cityhub nlp locate``) has none."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cityhub.nlp.address import Gazetteer, default_gazetteer

SHIJING, BAIYUNHU, XIAOGUWEI = "440111014", "440111018", "440113011"
BENCH = Path(__file__).parents[2] / "bench" / "data"


@pytest.fixture(scope="module")
def library() -> Gazetteer:
    """The packaged divisions with a road, a landmark and an alias of a community (大学城's 南亭村 would be a
    village of 小谷围街道; here a community of 石井街道 picked from the data)."""
    plain = default_gazetteer()
    community = next(u for u in plain.units.values() if u.parent_code == SHIJING)
    names = [("石井大道", SHIJING), ("大 学 城", XIAOGUWEI), ("某某广场", community.code)]
    return Gazetteer(plain.units.values(), names)


def test_the_packaged_gazetteer_has_no_library() -> None:
    assert default_gazetteer().extra_names == ()
    assert default_gazetteer().resolve("石井大道88号").street_code is None
    assert default_gazetteer().resolve("大学城里面的路灯坏了").street_code is None


def test_an_alias_names_its_unit_in_full(library: Gazetteer) -> None:
    road = library.resolve("石井大道88号")  # a road with a house number after it: its street
    assert (road.street_code, road.community_code, road.ambiguous) == (SHIJING, None, False)
    assert road.evidence == ["石井大道"]
    landmark = library.resolve("大学城里面的路灯坏了")  # stored normalised: 大学城
    assert (landmark.street_code, landmark.ambiguous) == (XIAOGUWEI, False)
    of_community = library.resolve("某某广场门口垃圾堆积")  # a community's alias names its street too
    assert of_community.street_code == SHIJING and of_community.community_code is not None
    # Named with another street in full: the text says two places, as with any two names.
    both = library.resolve("嘉禾街道石井大道")
    assert both.ambiguous and both.street_code is None


def test_an_alias_of_two_units_is_ambiguous_between_them() -> None:
    plain = default_gazetteer()
    shared = Gazetteer(plain.units.values(), [("石井大道", SHIJING), ("石井大道", BAIYUNHU)])
    loc = shared.resolve("石井大道88号")
    assert loc.ambiguous and loc.street_code is None and loc.district_code == "440111"
    assert {c.street_code for c in loc.candidates} == {SHIJING, BAIYUNHU}


def test_an_alias_changes_no_answer_to_a_text_not_naming_it(library: Gazetteer) -> None:
    texts: list[str] = []
    for name in ("addresses_labelled.csv", "addresses_heldout.csv"):
        with (BENCH / name).open(encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)][:400]
    texts = [t for t in texts if not any(a in t for a in ("石井大道", "大学城", "某某广场"))]
    assert len(texts) > 300
    plain = default_gazetteer()
    for text in texts:
        assert library.resolve(text).to_record() == plain.resolve(text).to_record(), text


def test_the_units_own_names_are_told_apart_from_the_librarys() -> None:
    plain = default_gazetteer()
    # An alias that is also a street's own name (石井街, of 石井街道) given to another street, and a new name.
    library = Gazetteer(plain.units.values(), [("石井街", BAIYUNHU), ("石井大道", SHIJING)])
    assert library.units_named("石井街").keys() == {SHIJING, BAIYUNHU}
    assert library.units_named("石井街", own=True).keys() == {SHIJING}
    assert library.units_named("石井大道").keys() == {SHIJING}
    assert library.units_named("石井大道", own=True) == {}
    assert library.units_named("石井街道", own=True) == plain.units_named("石井街道") != {}
