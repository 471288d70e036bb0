"""The fast NFKC used on every message must equal the standard one, whatever the input."""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.nlp.text import fingerprint_text, nfkc, normalize

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "teddycup2020_c" / "dev"

TRICKY = [
    "",
    "plain ascii",
    "ＡＢＣ，。１２３（全角）",
    "ｶﾞｷﾞ",  # half-width kana with a half-width voiced mark: composes across characters
    "e\u0301",  # a combining accent
    "\u212b\u0301",  # a compatibility character followed by a combining mark
    "①②③　㈱㍻",
    "𝐀𝐁 𝟏",  # beyond the BMP
    "가각",
    "白云区\u3000嘉禾街 望岗 社区",
]


@pytest.mark.parametrize("text", TRICKY)
def test_nfkc_equals_the_standard_on_tricky_forms(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40))
def test_nfkc_equals_the_standard_on_any_text(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_fingerprint_keeps_letters_and_digits_of_the_normal_form() -> None:
    text = "小区  门口，　垃圾 堆积！ＡＢ１２"
    assert fingerprint_text(text) == "".join(ch for ch in normalize(text) if ch.isalnum())
    assert fingerprint_text(text) == "小区门口垃圾堆积ab12"


@pytest.mark.skipif(not DEV.exists(), reason="shared data not present")
def test_nfkc_equals_the_standard_on_real_messages() -> None:
    texts: list[str] = []
    for path in sorted(DEV.glob("*.csv"))[:2]:
        with path.open(encoding="utf-8") as fh:
            texts += [f"{row.get('title') or ''}\n{row.get('content') or ''}" for row in csv.DictReader(fh)]
    assert len(texts) > 1000
    assert all(nfkc(t) == unicodedata.normalize("NFKC", t) for t in texts)
