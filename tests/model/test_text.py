"""model/text.py: what PostgreSQL cannot store, and case ids on one line."""

from __future__ import annotations

from commitbench.model.text import printable, storable, unstorable


def test_what_postgresql_cannot_store() -> None:
    assert unstorable("plain ünïcode ✓ 😀") is None
    assert unstorable("a\x00b") == "U+0000"
    assert unstorable("lone\ud800") == "U+D800"
    assert unstorable("x\udfff\x00") == "U+DFFF"  # the first one
    assert storable("bad\x00byte\ud83d") == "bad\\x00byte\\ud83d"
    assert storable("line\nbreak\ttab") == "line\nbreak\ttab"  # text keeps its lines
    assert unstorable(storable("a\x00\ud800")) is None


def test_one_line_whatever_the_id_holds() -> None:
    assert printable("m.f[s=4k,n=8]") == "m.f[s=4k,n=8]"
    assert printable('m.f[s="a,b\\"c"]') == 'm.f[s="a,b\\"c"]'  # backslashes left alone
    assert printable("m.f[s=a\nb]") == "m.f[s=a\\nb]"
    assert printable("m.f[s=a\r\nb\tc]") == "m.f[s=a\\r\\nb\\tc]"
    # Every line break str.splitlines knows, ESC, DEL, C1, a bidi override, a surrogate.
    text = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x1b[2J\x7f\u202eabc\ud800"
    assert printable(text) == (
        "\\x0b\\x0c\\x1c\\x1d\\x1e\\x85\\u2028\\u2029\\x1b[2J\\x7f\\u202eabc\\ud800"
    )
    assert len(printable(text).splitlines()) == 1
    assert printable("naïve café\u00a0x 😀") == "naïve café\u00a0x 😀"  # printable as is
