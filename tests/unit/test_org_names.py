"""Pure helpers of the org service: short names, level words, GeoJSON boundaries."""

from __future__ import annotations

import pytest

from cityhub.org.models import UnitTier
from cityhub.org.schemas import UnitCreate, check_boundary
from cityhub.org.service import derive_short_name, tier_for_level


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("三元里街道", "三元里"),
        ("太和镇", "太和"),
        ("白云区", "白云"),
        ("望岗社区居委会", "望岗社区"),
        ("大源村委会", "大源村"),
        ("沙圩一村民委员会", "沙圩一村"),
        ("翠洲社区居民委员会", "翠洲社区"),
        ("时代玫瑰园居委会", "时代玫瑰园社区"),
        # NBS typos seen in the Guangzhou data
        ("南漖社区居委会会", "南漖社区"),
        ("乐意居社区居居委会", "乐意居社区"),
        # no known suffix, or a one-character stem: the name stays whole
        ("黄龙带水库", "黄龙带水库"),
        ("沙市", "沙市"),
    ],
)
def test_derive_short_name(name: str, short: str) -> None:
    assert derive_short_name(name) == short


@pytest.mark.parametrize(
    ("level", "tier"),
    [
        ("district", UnitTier.DISTRICT),
        (" Street ", UnitTier.STREET),
        ("town", UnitTier.STREET),
        ("镇", UnitTier.STREET),
        ("village", UnitTier.COMMUNITY),
        ("community", UnitTier.COMMUNITY),
        ("city", UnitTier.CITY),
        ("province", None),
        ("", None),
    ],
)
def test_tier_for_level(level: str, tier: UnitTier | None) -> None:
    assert tier_for_level(level) == tier


SQUARE = [[113.2, 23.2], [113.3, 23.2], [113.3, 23.3], [113.2, 23.2]]


def test_polygon_and_multipolygon_are_accepted() -> None:
    polygon = {"type": "Polygon", "coordinates": [SQUARE]}
    multi = {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]}
    assert check_boundary(polygon) is polygon
    assert check_boundary(multi) is multi


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [113.2, 23.2]}, "Polygon or MultiPolygon"),
        (
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
            "Polygon or MultiPolygon",
        ),
        ({"type": "Polygon", "coordinates": [SQUARE[:3]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[*SQUARE[:3], [113.25, 23.25]]]}, "closed"),
        (
            {"type": "Polygon", "coordinates": [[[200, 23.2], [113.3, 23.2], [113.3, 23.3], [200, 23.2]]]},
            "range",
        ),
        ({"type": "Polygon", "coordinates": [[["a", "b"], [1, 1], [1, 2], ["a", "b"]]]}, "numbers"),
        ({"type": "MultiPolygon", "coordinates": []}, "non-empty"),
    ],
)
def test_bad_boundaries_are_refused(geometry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_boundary(geometry)


def test_unit_schema_validates_boundary() -> None:
    with pytest.raises(ValueError, match="Polygon or MultiPolygon"):
        UnitCreate(code="X1", name="测试", tier=UnitTier.STREET, boundary={"type": "LineString", "coordinates": []})
