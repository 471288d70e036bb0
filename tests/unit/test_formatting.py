"""How figures are written for people (cityhub.formatting)."""

from __future__ import annotations

from cityhub.formatting import calibration_text, percent


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
