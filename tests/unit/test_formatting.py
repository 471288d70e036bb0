"""How figures are written for people (cityhub.formatting)."""

from __future__ import annotations

from datetime import date
from typing import Any

from cityhub.analytics.risk import Finding
from cityhub.formatting import calibration_text, percent, significant


def _finding(kind: str, count: int, expected: float, effect: float, **given: Any) -> Finding:
    """A finding of ``kind`` with what its card shows; the rest any finding's."""
    fields: dict[str, Any] = {
        "place": "望岗社区",
        "place_level": "community",
        "category": "城乡建设/物业管理",
        "window_start": date(2026, 11, 1),
        "window_end": date(2026, 12, 1),
        "statistic": "poisson",
        "value": 0.0,
    }
    return Finding(kind=kind, count=count, expected=expected, effect=effect, **{**fields, **given})


def test_percent_writes_a_share_and_a_missing_one():
    assert percent(0.9123) == "91.2%" and percent(1.0, digits=0) == "100%"
    assert percent(None) == "-" and percent(None, missing="—") == "—"


def test_calibration_text_writes_every_bin_and_the_scores_it_has():
    cal = {
        "ece": 0.0312,
        "brier": 0.21,
        "log_loss": 0.4567,
        "bins": [
            {"from": 0.5, "to": 0.6, "n": 12, "confidence": 0.553, "accuracy": 0.5},
            {"from": 0.9, "to": 1.0, "n": 300, "confidence": 0.97, "accuracy": 0.98},
        ],
    }
    assert calibration_text(cal) == (
        "calibration: ECE 3.1%, Brier 0.210, log loss 0.457; by confidence (messages, mean confidence, right): "
        "(0.5,0.6]:12,55.3%,50.0% (0.9,1.0]:300,97.0%,98.0%"
    )
    # A threshold guide keeps only the ECE and the bins.
    assert calibration_text({"ece": 0.05, "bins": cal["bins"][:1]}) == (
        "calibration: ECE 5.0%; by confidence (messages, mean confidence, right): (0.5,0.6]:12,55.3%,50.0%"
    )


def test_significant_shows_a_small_figure_by_its_leading_digits_not_as_zero():
    """风险预警's expectations: 约 0.02 人次, not 约 0.0 人次 beside 108.5 倍."""
    assert [significant(v) for v in (0.0213, 0.02, 0.0187, 0.53, 0.05, 0.0999)] == [
        "0.021",
        "0.02",
        "0.019",
        "0.53",
        "0.05",
        "0.1",
    ]
    assert [significant(v) for v in (12.34, 3.0, 108.46, 0.0, -0.004)] == ["12.3", "3.0", "108.5", "0.0", "-0.004"]
    assert significant(0.000123, figures=1) == "0.0001" and significant(7.0, decimals=0) == "7"


def test_a_findings_card_and_summary_show_a_near_zero_expectation_by_its_digits():
    from cityhub.web.brain_pages import _finding_view
    from cityhub.web.i18n import Translator

    finding = _finding("recurring", count=2, expected=0.0184, effect=108.5)
    assert _finding_view(Translator("zh-CN"), finding)["count_text"] == (
        "2 人次反映，按各社区常态预期约 0.018 人次（108.7 倍）"
    )
    assert finding.summary().endswith("2人次反映（预期0.018）")


def test_a_finding_against_an_expectation_of_nothing_says_none_rather_than_an_infinite_ratio():
    """A day with orders where comparable days have none (median 0) has no ratio: the card read "约 0.0 件（inf 倍）",
    "about 0.0 (inf×)"."""
    import math

    from cityhub.web.brain_pages import _finding_view
    from cityhub.web.i18n import Translator

    day = date(2026, 12, 5)
    finding = _finding(
        "anomaly",
        count=16,
        expected=0.0,
        effect=math.inf,
        place=None,
        place_level="district",
        category=None,
        window_start=day,
        window_end=day,
        statistic="robust_z",
        value=16.0,
    )
    assert _finding_view(Translator("zh-CN"), finding)["count_text"] == "当天 16 件，同类日子常态为 0 件"
    assert (
        _finding_view(Translator("en"), finding)["count_text"] == "16 orders that day, where a comparable day has none"
    )
    finding.count = 1
    assert _finding_view(Translator("en"), finding)["count_text"].startswith("1 order that day")


def test_a_rising_findings_ratio_is_its_count_over_the_expectation_shown_beside_it():
    """A rising finding's ``effect`` is a rate ratio with half an event added to its baseline: a problem new in the
    last four weeks read "expected about 0.0 (24.0×)", and one with a baseline a multiple the two figures beside it
    did not give. The card and the summary show the count over the expectation, or say the half year had none."""
    from cityhub.analytics.risk import rate_ratio
    from cityhub.web.brain_pages import _finding_view
    from cityhub.web.i18n import Translator

    def rising(count: int, baseline: int) -> Finding:
        return _finding(
            "rising",
            count=count,
            expected=baseline * 28 / 182,
            effect=rate_ratio(count, baseline, recent_exposure=28, baseline_exposure=182),
            place="嘉禾街道",
            place_level="street",
            window_start=date(2026, 11, 7),
            window_end=date(2026, 12, 5),
            statistic="rate_ratio",
        )

    new = rising(12, 0)
    assert new.effect > 1  # finite, for ranking
    assert _finding_view(Translator("zh-CN"), new)["count_text"] == "近 4 周 12 件，此前半年没有"
    assert new.summary() == "嘉禾街道「物业管理」诉求上升：近期12件，此前半年没有"
    grown = rising(12, 13)  # expected 2.0: 6.0 times, where the smoothed rate ratio is 5.8
    assert _finding_view(Translator("zh-CN"), grown)["count_text"] == (
        "近 4 周 12 件，按此前半年的水平预期约 2.0 件（6.0 倍）"
    )
    assert grown.summary().endswith("近期12件，为基线水平的6.0倍") and round(grown.effect, 1) == 5.8
