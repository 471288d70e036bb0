"""The English names a page shows (``cityhub.localnames.EnglishNames``): by the Chinese text a page holds."""

from __future__ import annotations

from cityhub.localnames import EnglishNames, _agreed


def test_a_path_is_put_in_english_part_by_part_and_an_unknown_name_stays_as_it_is() -> None:
    names = EnglishNames(
        units={"景泰街道": "Jingtai Subdistrict"},
        paths={"城乡建设": "Urban-rural development", "城乡建设/住房保障": "Urban-rural development/住房保障"},
        categories={"城乡建设": "Urban-rural development", "其他": "Other"},
    )
    assert names.unit("景泰街道") == "Jingtai Subdistrict" and names.unit("京溪街道") == "京溪街道"
    assert names.category("城乡建设/住房保障") == "Urban-rural development/住房保障"
    assert names.category("其他") == "Other" and names.category("环境保护") == "环境保护"
    # A path the taxonomy no longer has (a renamed node): part by part by name.
    assert names.category("城乡建设/旧名/其他") == "Urban-rural development/旧名/Other"


def test_a_chinese_name_is_put_in_english_only_when_all_that_bear_it_agree() -> None:
    agreed = _agreed([("新村社区", "Xincun"), ("新村社区", None), ("其他", "Other"), ("其他", "Other"), ("甲", None)])
    assert agreed == {"其他": "Other"}
