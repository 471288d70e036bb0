"""A place's name in the standard romanisation (``cityhub.org.placenames.romanised``), the English name English pages
show for a street or community without one of its own: real Guangzhou names (the NBS divisions of
/work/shared/data/china_admin_divisions and the bundled Baiyun divisions)."""

from __future__ import annotations

import re

import pytest

from cityhub.org.models import UnitTier
from cityhub.org.placenames import romanised, split_generic
from cityhub.org.service import BAIYUN_DIVISIONS, read_csv_table, tier_for_level


@pytest.mark.parametrize(
    ("name", "tier", "english"),
    [
        # communities (社区居委会 / 社区居民委员会 / 居委会): the proper name one word, the generic word Community
        ("槎龙社区居委会", UnitTier.COMMUNITY, "Chalong Community"),  # 440111003001
        ("猎德社区居委会", UnitTier.COMMUNITY, "Liede Community"),  # 440106013001
        ("冼村社区居委会", UnitTier.COMMUNITY, "Xiancun Community"),  # 440106014001: 冼村 is the proper name
        ("翠洲社区居民委员会", UnitTier.COMMUNITY, "Cuizhou Community"),  # 440103001101
        ("故衣街社区居民委员会", UnitTier.COMMUNITY, "Guyijie Community"),  # 440103002103: 街 inside the name
        ("时代玫瑰园居委会", UnitTier.COMMUNITY, "Shidaimeiguiyuan Community"),  # 440111017004
        ("南漖社区居委会会", UnitTier.COMMUNITY, "Nanjiao Community"),  # an NBS typo, read as the short name reads it
        # Pinyin's dividing mark before a syllable beginning with a, o or e
        ("飞鹅新村社区居委会", UnitTier.COMMUNITY, "Fei'exincun Community"),  # 440111002001
        ("平安社区居委会", UnitTier.COMMUNITY, "Ping'an Community"),  # 440111004007
        # polyphonic characters read in their word (长 chang, not zhang)
        ("长安社区居委会", UnitTier.COMMUNITY, "Chang'an Community"),  # 440111004010
        # Guangdong's readings of 涌 (chong) and 圩 (xu)
        ("沙涌社区居委会", UnitTier.COMMUNITY, "Shachong Community"),  # 440103015002
        ("沙圩一村民委员会", UnitTier.COMMUNITY, "Shaxuyi Village"),  # 440113007203
        # villages (村委会 / 村民委员会): Village
        ("大源村委会", UnitTier.COMMUNITY, "Dayuan Village"),  # 440111021200
        ("南村村委会", UnitTier.COMMUNITY, "Nancun Village"),  # 440111020201: 南村 is the proper name
        ("沙涌村民委员会", UnitTier.COMMUNITY, "Shachong Village"),  # 440113016211
        # streets and towns, as the bundled divisions' English names are written
        ("猎德街道", UnitTier.STREET, "Liede Subdistrict"),  # 440106013
        ("车陂街道", UnitTier.STREET, "Chebei Subdistrict"),  # 440106003
        ("东涌镇", UnitTier.STREET, "Dongchong Town"),  # 440115103
        ("番禺区", UnitTier.DISTRICT, "Panyu District"),  # 440113
        ("广州市", UnitTier.CITY, "Guangzhou City"),
    ],
)
def test_a_places_name_is_romanised_with_its_generic_word_in_english(name: str, tier: UnitTier, english: str) -> None:
    assert romanised(name, tier) == english


def test_the_romanisation_writes_the_bundled_streets_english_names_as_they_are_written() -> None:
    """The Baiyun divisions' English names (Sanyuanli Subdistrict, Renhe Town, Baiyun District) are the convention:
    every one given is what the romanisation writes, and every one of the 404 communities and villages gets one."""
    rows = [values for _, values in read_csv_table(BAIYUN_DIVISIONS).rows]
    given = {values["name"]: values["name_en"] for values in rows if values["name_en"]}
    tiers = {values["name"]: tier_for_level(values["level"]) for values in rows}
    assert len(given) == 25
    assert {name: romanised(name, tiers[name]) for name in given} == given
    communities = [values["name"] for values in rows if values["level"] == "community"]
    assert len(communities) == 404
    english = [romanised(name, UnitTier.COMMUNITY) or "" for name in communities]
    assert all(re.fullmatch(r"[A-Z][a-zü']+ (Community|Village)", e) for e in english), english


def test_a_unit_that_is_not_a_place_or_a_name_without_chinese_is_not_romanised() -> None:
    """A department's name is a description to translate (an administrator's ``name_en``), not a place."""
    assert romanised("广州市白云区住房和城乡建设局", UnitTier.DEPARTMENT) is None
    assert romanised("白云区12345政府服务热线分中心", UnitTier.SUBCENTRE) is None
    assert romanised("Airport Community", UnitTier.COMMUNITY) is None


def test_the_generic_word_is_taken_off_only_a_stem_of_two_characters_or_more() -> None:
    """沙市 and 南村 are names of their own; 街 is a subdistrict's word only for a street's unit."""
    assert split_generic("沙市") == ("沙市", "")
    assert romanised("南村", UnitTier.COMMUNITY) == "Nancun"
    assert romanised("北京街", UnitTier.STREET) == "Beijing Subdistrict"
    assert romanised("龙归街", UnitTier.COMMUNITY) == "Longguijie"
    # letters and digits kept as they are, the first letter capitalised
    assert romanised("A区3号", None) == "Aqu3hao"
