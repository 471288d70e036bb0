"""The detection kinds of video-AI cameras are named twice — in the orders they open (Chinese, domain text) and in
the web UI's catalogues — so the two must not drift apart."""

from __future__ import annotations

from cityhub.monitoring.rules import DETECTIONS
from cityhub.web.i18n import translate


def test_every_detection_kind_is_named_the_same_in_orders_and_on_the_pages() -> None:
    for code, name in DETECTIONS.items():
        assert translate("zh-CN", f"metric.{code}") == name, code
        english = translate("en", f"metric.{code}")
        assert english != f"metric.{code}" and english != name, code  # named in English too, not fallen back
