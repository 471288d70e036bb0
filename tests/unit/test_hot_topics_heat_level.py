"""A hot topic's heat in words: its level among all topics by rank (hot_topics.heat_level)."""

from cityhub.analytics.hot_topics import heat_level


def test_a_heat_is_very_high_in_the_first_tenth_of_the_topics_and_low_beyond_six_tenths() -> None:
    assert [heat_level(rank, 100) for rank in (1, 10, 11, 30, 31, 60, 61, 100)] == [
        *("very_high", "very_high", "high", "high"),
        *("medium", "medium", "low", "low"),
    ]
    # The hottest is very high however few the topics are.
    assert [heat_level(rank, 3) for rank in (1, 2, 3)] == ["very_high", "medium", "low"] and heat_level(
        1, 1
    ) == "very_high"
