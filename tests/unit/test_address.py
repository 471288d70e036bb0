"""Address → jurisdiction: gazetteer aliases, chain scoring, ambiguity, typos, coordinates, CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cityhub.errors import ValidationFailed
from cityhub.nlp.address import (
    Gazetteer,
    aliases_for,
    default_gazetteer,
    geometry_contains,
    resolve,
    resolve_point,
    split_community,
)
from cityhub.nlp.cli import app as nlp_app
from web_helpers import square


def _invoke(args: list[str]) -> Any:
    # Mounted the way the root CLI does, so the result does not depend on how many nlp commands exist.
    root = typer.Typer()
    root.add_typer(nlp_app, name="nlp")
    return CliRunner().invoke(root, ["nlp", *args])


SHARED_GEO = Path("../shared/data/china_admin_divisions/geo")


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


def test_packaged_gazetteer_covers_all_guangzhou_districts(gaz: Gazetteer) -> None:
    districts = {u.name for u in gaz.units.values() if u.level == "district"}
    assert len(districts) == 11 and {"白云区", "增城区", "从化区"} <= districts
    assert sum(u.level == "community" for u in gaz.units.values()) > 2500


@pytest.mark.parametrize(
    ("text", "street", "community"),
    [
        ("白云区嘉禾街望岗社区", "嘉禾街道", None),  # 望岗 is not a community in the divisions
        ("太和镇大源村", "大源街道", "大源村委会"),  # 大源村 now belongs to 大源街道
        ("同和街蟾蜍石东路", "同和街道", "蟾蜍石社区居委会"),  # road named after a community of that street
        ("京溪街南方医院附近", "京溪街道", None),  # a landmark does not name a community
    ],
)
def test_issue_examples(gaz: Gazetteer, text: str, street: str, community: str | None) -> None:
    loc = gaz.resolve(text)
    assert loc.district == "白云区"
    assert loc.street == street
    assert loc.community == community
    assert not loc.ambiguous
    assert 0.0 < loc.confidence <= 1.0


def test_conflicting_street_lowers_confidence(gaz: Gazetteer) -> None:
    clean = gaz.resolve("大源街大源村")
    conflict = gaz.resolve("太和镇大源村")
    assert clean.community_code == conflict.community_code
    assert conflict.confidence < clean.confidence


@pytest.mark.parametrize(
    ("text", "district"),
    [
        ("嘉禾街道握山社区", "白云区"),  # 握山社区 is 同和街道's
        ("白云区嘉禾街蟾蜍石社区居委会附近", "白云区"),  # 蟾蜍石 too
        ("同和街长湴社区", "白云区"),  # 长湴 is 嘉禾街道's
        ("太和镇握山社区", "白云区"),  # a town, but 握山 is a community of a street, not one of its villages
        ("天河区握山社区", None),  # a district that holds no 握山
        ("天河区嘉禾街", None),
    ],
)
def test_a_street_or_district_named_with_a_community_of_another_is_ambiguous(
    gaz: Gazetteer, text: str, district: str | None
) -> None:
    """Two places named in full, nothing telling which is meant: ambiguous, answering what both readings agree on,
    each of them a candidate, with the confidence of an ambiguous answer — not the community's street."""
    loc = gaz.resolve(text)
    assert (loc.district, loc.street_code, loc.community_code, loc.ambiguous) == (district, None, None, True)
    assert len(loc.candidates) == 2 and loc.confidence < 0.3
    assert loc.to_record()["ambiguous"] is True


def test_xintang_is_ambiguous_without_context(gaz: Gazetteer) -> None:
    loc = gaz.resolve("新塘")
    assert loc.ambiguous
    assert loc.district is None and loc.street is None
    assert {c.district for c in loc.candidates} == {"天河区", "增城区"}
    assert loc.confidence < 0.5


@pytest.mark.parametrize(
    ("text", "hint", "district", "street"),
    [
        ("天河区新塘", None, "天河区", "新塘街道"),
        ("增城新塘", None, "增城区", "新塘镇"),
        ("新塘镇", None, "增城区", "新塘镇"),
        ("新塘", "增城区", "增城区", "新塘镇"),
        ("新塘", "440106", "天河区", "新塘街道"),
    ],
)
def test_xintang_resolved_from_context(gaz: Gazetteer, text: str, hint: str | None, district: str, street: str) -> None:
    loc = gaz.resolve(text, district_hint=hint)
    assert not loc.ambiguous
    assert (loc.district, loc.street) == (district, street)


def test_traditional_characters(gaz: Gazetteer) -> None:
    loc = gaz.resolve("廣州市白雲區鍾落潭鎮竹料社區")
    assert (loc.district, loc.street) == ("白云区", "钟落潭镇")
    assert loc.community is not None and loc.community.startswith("竹料社区")


def test_one_character_typo_in_street(gaz: Gazetteer) -> None:
    exact = gaz.resolve("白云区钟落潭镇")
    typo = gaz.resolve("白云区钟洛潭镇")
    assert typo.street_code == exact.street_code is not None
    assert typo.confidence < exact.confidence
    assert any(e.startswith("~") for e in typo.evidence)


def test_typo_in_community_uses_street_context(gaz: Gazetteer) -> None:
    # 百所 is one character from both 七所 (another street) and 百睦 (海幢街): the named street decides.
    loc = gaz.resolve("海珠区海幢街百所社区")
    assert loc.street == "海幢街道"
    assert loc.community is not None and loc.community.startswith("百睦")


def test_short_forms(gaz: Gazetteer) -> None:
    full = gaz.resolve("白云区嘉禾街道望南社区居委会")
    for text in ("白云嘉禾街望南社区", "嘉禾街望南", "嘉禾望南社区"):
        loc = gaz.resolve(text)
        assert loc.community_code == full.community_code is not None, text
    assert gaz.resolve("太和").street == "太和镇"


def test_road_names_do_not_invent_communities(gaz: Gazetteer) -> None:
    loc = gaz.resolve("白云区幸福路")
    assert loc.district == "白云区" and loc.community is None
    nothing = gaz.resolve("北京路")
    assert nothing.street is None and nothing.district is None and nothing.confidence == 0.0


def test_former_names(gaz: Gazetteer) -> None:
    assert gaz.resolve("番禺区钟村镇谢村").street == "钟村街道"
    assert gaz.resolve("芳村区花地街").district == "荔湾区"


def test_aliases_of_a_community_and_a_village() -> None:
    assert split_community("望岗社区居委会") == ("望岗", "community")
    assert split_community("大源村委会") == ("大源", "village")
    gaz = Gazetteer.from_rows(
        [
            {"code": "440111", "name": "白云区"},
            {"code": "440111012", "name": "嘉禾街道"},
            {"code": "440111012002", "name": "望岗社区居委会"},
        ]
    )
    names = {a for a, _, _ in aliases_for(gaz.units["440111012002"])}
    assert {"望岗社区居委会", "望岗社区", "望岗"} <= names
    assert {"嘉禾街道", "嘉禾街", "嘉禾"} <= {a for a, _, _ in aliases_for(gaz.units["440111012"])}


def test_a_village_turned_community_is_found_by_its_old_name_where_the_text_agrees(gaz: Gazetteer) -> None:
    # 石井街's 庆丰社区 was 庆丰村; 增城's 庆丰村委会 is still a village: the street named decides.
    for text in ("石井街庆丰村", "白云区石井街庆丰村委会旁边"):
        loc = gaz.resolve(text)
        assert (loc.district, loc.street, loc.community_code) == ("白云区", "石井街道", "440111014015"), text
    assert gaz.resolve("嘉禾街望南村").community == "望南社区居委会"
    alone = gaz.resolve("庆丰村")  # nothing else said: the village that bears the name
    assert (alone.district, alone.community) == ("增城区", "庆丰村委会")
    # A neighbour that bears the old name itself keeps it: 江海街 has both 石榴岗村社区 and 石榴岗社区.
    assert gaz.resolve("海珠区江海石榴岗村").community_code == "440105014123"


@dataclass
class FakeUnit:
    id: int
    code: str
    name: str
    tier: str
    parent_id: int | None
    boundary: dict[str, Any] | None = None


def test_from_units_resolves_text_and_points_with_unit_boundaries() -> None:
    units = [
        FakeUnit(1, "D1", "东区", "district", None, square(0, 0, 10, 10)),
        FakeUnit(2, "S1", "河口街道", "street", 1, square(0, 0, 5, 10)),
        FakeUnit(3, "C1", "柳树社区居委会", "community", 2, square(0, 0, 5, 5)),
        FakeUnit(4, "X", "城管局", "department", 1),
    ]
    gaz = Gazetteer.from_units(units)
    loc = gaz.resolve("东区河口街柳树社区3号")
    assert (loc.district_code, loc.street_code, loc.community_code) == ("D1", "S1", "C1")
    point = gaz.resolve_point(2.0, 2.0)  # lat, lng
    assert point.community_code == "C1" and point.street_code == "S1"
    street_only = gaz.resolve_point(8.0, 2.0)
    assert street_only.street_code == "S1" and street_only.community_code is None
    assert gaz.resolve_point(8.0, 8.0).street_code is None
    assert gaz.resolve_point(20.0, 20.0).district is None


def test_polygon_holes_are_outside() -> None:
    donut = {
        "type": "Polygon",
        "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]],
        ],
    }
    assert geometry_contains(donut, 1, 1)
    assert not geometry_contains(donut, 5, 5)


def test_point_in_baiyun_boundary_is_baiyun() -> None:
    path = SHARED_GEO / "baiyun_district_boundary_datav.geojson"
    if not path.exists():
        pytest.skip("shared divisions data not present")
    data = json.loads(path.read_text(encoding="utf-8"))
    feature = data["features"][0] if "features" in data else data
    lng, lat = feature["properties"]["centroid"]
    assert geometry_contains(feature["geometry"], lng, lat)
    loc = resolve_point(lat, lng)
    assert loc.district == "白云区" and loc.district_code == "440111"
    assert resolve_point(39.9, 116.4).district is None  # Beijing


def test_bad_coordinate_is_rejected() -> None:
    with pytest.raises(ValidationFailed):
        resolve_point(123.0, 500.0)


def test_module_level_resolve_uses_packaged_gazetteer() -> None:
    assert resolve("越秀区北京街道").street_code == "440104003"


def test_cli_json_lines_have_exactly_the_contract_keys(tmp_path: Path) -> None:
    f = tmp_path / "addr.txt"
    f.write_text("白云区嘉禾街望南社区\n\n新塘\n", encoding="utf-8")
    result = _invoke(["locate", "--input", str(f), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2
    keys = {
        "input",
        "district",
        "street",
        "street_code",
        "community",
        "community_code",
        "ambiguous",
        "confidence",
    }
    assert all(set(r) == keys for r in records)
    assert records[0]["street_code"] == "440111012" and records[0]["community_code"]
    assert records[1]["ambiguous"] is True and records[1]["street"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["locate", "--input", "{missing}", "--json"],
        ["classify", "--model", "{missing}", "--text", "路灯不亮"],
        ["train", "--data", "{missing}", "--out", "{tmp}/model"],
        ["evaluate", "--model", "{missing}", "--data", "{missing}"],
    ],
)
def test_cli_missing_file_fails_with_one_line_and_the_same_code(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "none.txt"
    result = _invoke([a.format(missing=missing, tmp=tmp_path) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "not found" in lines[0], result.output


def _windows_matching_a_fuzzy_key(gaz: Gazetteer, text: str) -> set[tuple[int, int]]:
    """(length, start) of every window of ``text`` equal to some one-typo key: the exhaustive scan."""
    found = set()
    for length in gaz._fuzzy_lengths:
        for start in range(len(text) - length + 1):
            span = text[start : start + length]
            if any(span[:i] + "?" + span[i + 1 :] in gaz._fuzzy for i in range(length)):
                found.add((length, start))
    return found


def test_fuzzy_anchors_find_every_window_the_exhaustive_scan_finds(gaz: Gazetteer) -> None:
    import random

    rng = random.Random(5)
    keys = sorted(gaz._fuzzy)
    filler = "市民反映附近道路积水严重请尽快处理谢谢广州白云区街道社区村委会旁边"
    texts = []
    for _ in range(300):
        parts = []
        for key in rng.sample(keys, 3):  # each key written with its wildcard as some character
            parts.append("".join(rng.choice(filler) for _ in range(rng.randint(0, 6))))
            parts.append(key.replace("?", rng.choice(filler)))
        texts.append("".join(parts))
    for text in texts:
        expected = _windows_matching_a_fuzzy_key(gaz, text)
        assert expected, text  # every text holds three typo'd names
        starts = gaz._fuzzy_anchors.window_starts(text)
        missing = {(n, s) for n, s in expected if s not in starts.get(n, set())}
        assert not missing, (text, missing)


def test_fuzzy_pass_on_long_text_still_finds_a_typo(gaz: Gazetteer) -> None:
    prose = "楼下商铺夜间经营噪音很大，多次沟通无果，影响休息。" * 40
    exact = gaz.resolve("白云区钟落潭镇")
    loc = gaz.resolve(prose + "地址在白云区钟洛潭镇。")
    assert loc.street_code == exact.street_code is not None
    assert any(e.startswith("~") for e in loc.evidence)


def test_normalise_converts_traditional_phrases_and_leaves_simplified_text_alone() -> None:
    from cityhub.nlp.address import normalise

    assert normalise("白雲區 嘉禾街望崗社區") == "白云区嘉禾街望岗社区"
    assert normalise("情有獨鍾") == "情有独钟"  # a phrase, not character by character (鍾 → 钟 here)
    for simplified in ("老么家门口", "嘉禾街望岗社区幸福路12号", "有情况"):
        assert normalise(simplified) == simplified


@pytest.mark.parametrize(
    ("text", "elsewhere"),
    [
        ("深圳市坪山区石井街道125号", ["!深圳市", "!坪山区"]),  # 石井街道 is also 白云区's
        ("北京市朝阳区望京街道阜通东大街6号", ["!北京市", "!朝阳区"]),  # 北京 is also 越秀区's 北京街道
        ("江门市蓬江区棠下镇185号", ["!江门市", "!蓬江区"]),
        ("贵州省贵阳市白云区", ["!贵州省", "!贵阳市"]),  # 贵阳 has a 白云区 too
        ("深圳南山区粤海街道", ["!南山区"]),
        # Anonymised data names other cities' places by code (the Teddy Cup board's A市, K2区, E12市, J10 县).
        ("A市A5区黎托乡大桥村", ["!A市", "!A5区"]),
        ("K2区高塘村的脏乱差谁重视", ["!K2区"]),
        ("E12市邓元泰镇周边", ["!E12市"]),
        ("J10 县安平镇", ["!J10县"]),
    ],
)
def test_an_address_in_another_city_is_not_placed_by_a_namesake(text: str, elsewhere: list[str]) -> None:
    loc = resolve(text)
    assert (loc.district, loc.street, loc.community, loc.ambiguous) == (None, None, None, False)
    assert loc.evidence == elsewhere


@pytest.mark.parametrize(
    ("text", "street"),
    [
        ("广州市白云区石井街道", "石井街道"),  # the own city named
        ("白云区石井街道，我老家深圳市", "石井街道"),  # a local name first
        ("深圳市民在白云区嘉禾街反映", "嘉禾街道"),  # a local district named
        ("中山市场旁边嘉禾街望南社区", "嘉禾街道"),  # a market, not 中山市
        ("嘉禾街望南社区B2区3栋", "嘉禾街道"),  # a compound's zone after the local names
        ("A区3栋，嘉禾街望南社区", "嘉禾街道"),  # a zone without a number is no place
        ("B2区3栋，嘉禾街望南社区", "嘉禾街道"),  # nor one with a building number after it
        ("B2区 12号楼，嘉禾街望南社区", "嘉禾街道"),
        ("幸福花园C3区，嘉禾街望南社区", "嘉禾街道"),  # nor one named after its compound
        ("嘉禾街A市场旁", "嘉禾街道"),
    ],
)
def test_another_citys_name_beside_local_ones_does_not_hide_them(text: str, street: str) -> None:
    assert resolve(text).street == street


def test_a_gazetteer_without_national_codes_has_no_elsewhere() -> None:
    gaz = Gazetteer.from_rows(
        [
            {"code": "X1", "name": "青禾区", "level": "district"},
            {"code": "X1-01", "name": "石井街道", "level": "street", "parent_code": "X1"},
        ]
    )
    assert gaz.resolve("深圳市石井街道").street == "石井街道"


def test_a_dropped_character_is_a_typo_too() -> None:
    loc = resolve("番禺区小围街道")  # 小谷围街道
    assert (loc.street, loc.ambiguous, loc.evidence) == ("小谷围街道", False, ["番禺区", "~小围街道"])
    assert loc.confidence < resolve("番禺区小谷围街道").confidence


def test_a_typo_that_fits_streets_of_the_district_is_ambiguous_among_them() -> None:
    loc = resolve("海珠区江中街道")  # 江南中街道 with 南 dropped, or 江海街道 with 海 → 中
    assert (loc.district, loc.street, loc.ambiguous) == ("海珠区", None, True)
    assert {c.street for c in loc.candidates} == {"江南中街道", "江海街道"}


def test_a_typo_that_fits_communities_of_one_street_names_that_street() -> None:
    loc = resolve("均禾街罗冈社区")  # 罗岗 or 罗南, both in 均禾街道
    assert (loc.street, loc.community, loc.ambiguous) == ("均禾街道", None, False)


def test_a_short_names_typo_counts_when_the_text_names_the_unit_otherwise() -> None:
    # 长舟街 for 长洲街: a 2-character core needs context; 长洲大道 gives it.
    assert resolve("长舟街长洲大道166号").street == "长洲街道"
    assert resolve("长舟街166号").street is None
    assert resolve("嘉和街").street is None


def test_a_typo_does_not_cut_a_name_the_answer_rests_on() -> None:
    # 市桥大街: the road of 市桥街道, not 桥南街 with 南 mistyped as 大 (a typo reading across 市桥's end).
    loc = resolve("番禺区市桥大街13巷17号")
    assert (loc.street, loc.ambiguous, loc.evidence) == ("市桥街道", False, ["番禺区", "市桥"])
    # Where no exact name is cut, the typo reading stands.
    assert resolve("白云区钟洛潭镇").street == "钟落潭镇"
    assert resolve("番禺区桥大街13巷").street == "桥南街道"


def test_a_bare_district_against_a_bare_street_of_another_is_ambiguous() -> None:
    # 黄埔中新知识城: 黄埔 said, 中新 a town of 增城区; nothing says which is meant (it is neither: no landmark list).
    loc = resolve("黄埔中新知识城3队118号")
    assert (loc.district, loc.street, loc.ambiguous) == (None, None, True)
    assert {c.district for c in loc.candidates} == {"黄埔区", "增城区"}
    # Bare names that agree, or a street named in full, are no contradiction.
    assert (resolve("白云嘉禾").street, resolve("白云嘉禾").ambiguous) == ("嘉禾街道", False)
    assert resolve("越秀白云街").street == "白云街道"
    assert resolve("黄埔中新镇").street == "中新镇"


def test_a_typo_in_a_long_bare_community_name_counts_inside_the_named_street() -> None:
    # No 社区/村 after the name, as citizens write a compound's name: 加拿大花元 for 加拿大花园, 金碧亲城 for 金碧新城.
    loc = resolve("天河区棠下街加拿大花元135号之3")
    assert (loc.street, loc.community, loc.ambiguous) == ("棠下街道", "加拿大花园社区居委会", False)
    assert loc.evidence[-1] == "~加拿大花元" and loc.confidence < resolve("天河区棠下街加拿大花园").confidence
    assert resolve("白云区石井街道金碧亲城16号").community == "金碧新城社区居委会"
    # Without the street named, a bare name's typo is no evidence.
    assert resolve("天河区加拿大花元").community is None
    assert resolve("加拿大花元").district is None


_PROSE = "楼下商铺夜间经营噪音很大，多次沟通无果，影响休息。"


@pytest.mark.parametrize(
    ("short", "long"),
    [
        # one address inside 50,000 characters of prose, its place named exactly or with a typo
        ("白云区嘉禾街望南社区", _PROSE * 1000 + "白云区嘉禾街望南社区" + _PROSE * 1000),
        ("白云区钟洛潭镇", _PROSE * 1000 + "地址在白云区钟洛潭镇。" + _PROSE * 1000),
        # the same names thousands of times over (the audit: an order of 48,000 characters)
        ("白云区嘉禾街", "白云区嘉禾街" * 8400),
        ("贵州省贵阳市白云区", "贵州省贵阳市白云区" * 6000),
        ("嘉禾街望南社区，深圳市", "嘉禾街望南社区，深圳市" * 5000),
    ],
)
def test_a_long_text_resolves_as_the_short_address_it_holds(gaz: Gazetteer, short: str, long: str) -> None:
    assert len(long) >= 50_000
    expected, loc = gaz.resolve(short), gaz.resolve(long)
    assert (loc.district_code, loc.street_code, loc.community_code, loc.ambiguous) == (
        expected.district_code,
        expected.street_code,
        expected.community_code,
        expected.ambiguous,
    )


def test_longest_first_keeps_what_comparing_every_pair_kept() -> None:
    """The set of non-overlapping mentions is the one the pairwise definition gives, on random overlapping spans."""
    import random

    from cityhub.nlp.address import _longest_first, _Mention

    def pairwise(found: list[_Mention]) -> list[_Mention]:
        found = sorted(found, key=lambda m: (-(m.end - m.start), -max(w for _, w in m.cands), m.start))
        taken: list[_Mention] = []
        for m in found:
            if all(m.end <= t.start or m.start >= t.end for t in taken):
                taken.append(m)
        return sorted(taken, key=lambda m: m.start)

    rng = random.Random(7)
    for _ in range(200):
        found = []
        for _ in range(rng.randrange(1, 40)):
            start = rng.randrange(60)
            weight = rng.choice([0.5, 1.0, 2.0])
            found.append(_Mention(start, start + rng.randrange(1, 8), "x", (("c", weight),)))
        assert _longest_first(list(found)) == pairwise(found)
