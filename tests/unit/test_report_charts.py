"""The report's charts: drawn once per set of figures, drawn again when a figure changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cityhub.analytics import reports


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every figure drawn from here on (none kept from before: the charts' cache emptied)."""
    figures: list[object] = []
    real = reports._figure_uri

    def counting(fig):  # type: ignore[no-untyped-def]
        figures.append(fig)
        return real(fig)

    monkeypatch.setattr(reports, "_figure_uri", counting)
    reports._charts.cache_clear()
    return figures


def _data(today: int) -> SimpleNamespace:
    return SimpleNamespace(
        daily=[("2026-03-01", 4), ("2026-03-02", today)],
        categories=[{"name": "城乡建设/路灯", "count": 5, "share": 0.5}],
        streets=[{"name": "景泰街道", "count": 3, "share": 0.3}],
    )


def test_the_same_figures_are_drawn_once_and_a_changed_figure_again(drawn):
    first = reports.draw_charts(_data(2))  # type: ignore[arg-type]
    assert set(first) == {"daily", "categories", "streets"} and len(drawn) == 3
    assert all(uri.startswith("data:image/png;base64,") for uri in first.values())
    assert reports.draw_charts(_data(2)) == first and len(drawn) == 3  # type: ignore[arg-type]
    changed = reports.draw_charts(_data(3))  # type: ignore[arg-type]  # an order received today since
    assert len(drawn) == 6 and changed["daily"] != first["daily"] and changed["streets"] == first["streets"]


def test_the_charts_are_titled_in_the_reports_language_and_kept_apart_per_language(drawn):
    chinese = reports.draw_charts(_data(2))  # type: ignore[arg-type]
    english = reports.draw_charts(_data(2), lang="en")  # type: ignore[arg-type]
    assert len(drawn) == 6 and english["daily"] != chinese["daily"]  # the same figures, drawn again in English
    titles = [(fig.axes[0].get_title(), fig.axes[0].get_xlabel()) for fig in drawn]  # type: ignore[attr-defined]
    assert titles[:3] == [("二、每日受理量", ""), ("三、诉求类别排行", "件数"), ("四、镇街诉求量排行", "件数")]
    assert titles[3:] == [
        ("2. Orders received per day", ""),
        ("3. Top categories of appeal", "Orders"),
        ("4. Appeals by street and town", "Orders"),
    ]
    assert drawn[3].axes[0].get_ylabel() == "Orders"  # type: ignore[attr-defined]
    assert reports.draw_charts(_data(2), lang="en") == english and len(drawn) == 6  # type: ignore[arg-type]


def test_charts_drawn_at_once_by_several_threads_are_those_drawn_one_at_a_time():
    """A leader's report and the server's warm-up (``reports.keep_warm``, a thread of its own) draw at the same time:
    pyplot's figures and its style (``rcParams``) are the process's, so each set of charts must be drawn as if
    alone — the same pictures as drawn one at a time, the process's style left as it was."""
    import threading

    import matplotlib

    sets = [_data(n) for n in range(2, 10)]
    reports._charts.cache_clear()
    alone = [reports.draw_charts(d) for d in sets]  # type: ignore[arg-type]
    reports._charts.cache_clear()
    style = dict(matplotlib.rcParams)
    together: dict[int, dict[str, str]] = {}
    start = threading.Barrier(len(sets))

    def draw(i: int) -> None:
        start.wait()
        together[i] = reports.draw_charts(sets[i])  # type: ignore[arg-type]

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(sets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [together[i] for i in range(len(sets))] == alone
    assert dict(matplotlib.rcParams) == style


def test_a_cjk_font_installed_after_matplotlib_cached_its_font_list_is_found(monkeypatch: pytest.MonkeyPatch):
    """matplotlib keeps the system's fonts in a cache made at its first run: a CJK font installed after it (as
    .ci/run and the README install one) was not seen, and the charts lost their Chinese on a machine with the font."""
    from matplotlib import font_manager

    system_cjk = [
        p for p in font_manager.findSystemFonts() if any(k in p.lower() for k in ("wqy", "cjk", "droidsansfallback"))
    ]
    if not system_cjk:
        pytest.skip("no CJK font installed on this machine (Debian: fonts-wqy-zenhei)")
    # the cached list as it was before the font was installed: matplotlib's own fonts only
    bundled = [f for f in font_manager.fontManager.ttflist if "mpl-data" in f.fname]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", bundled)
    reports.find_cjk_font.cache_clear()
    try:
        font = reports.find_cjk_font()
        assert font is not None
        assert any(font == f.name and f.fname in system_cjk for f in font_manager.fontManager.ttflist)
    finally:
        reports.find_cjk_font.cache_clear()
