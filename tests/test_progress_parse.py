"""Progress parsing (backend/services/progress.py) over real tqdm output."""
from __future__ import annotations

import io

import pytest
import tqdm

from backend.services.progress import TAIL_BYTES, newer, parse


def _tqdm_output(updates: list[int], **kw) -> bytes:
    out = io.StringIO()
    bar = tqdm.tqdm(file=out, mininterval=0, miniters=1, **kw)
    for n in updates:
        bar.update(n)
    out.write("")  # not closed: a running bar
    return out.getvalue().encode()


def test_a_tqdm_bar_gives_percent_counts_eta_and_rate():
    got = parse(b"\r 45%|####5     | 450/1000 [01:23<01:40,  5.41it/s]")
    assert got == {"percent": 45.0, "current": 450.0, "total": 1000.0, "eta_s": 100.0, "rate": 5.41}
    slow = parse(b"\r 33%|###3      | 1/3 [1:00:01<2:00:02,  1.25s/it, loss=0.3]")
    assert slow == {"percent": 33.0, "current": 1.0, "total": 3.0, "eta_s": 7202.0, "rate": 0.8}


def test_real_tqdm_output_the_last_redraw_wins():
    got = parse(_tqdm_output([100, 200, 150], total=1000, desc="epoch 3"))
    assert (got["percent"], got["current"], got["total"]) == (45.0, 450.0, 1000.0)
    assert got["rate"] > 0 and got["eta_s"] is not None


def test_real_tqdm_with_units_scaled_and_unknown_totals():
    scaled = parse(_tqdm_output([3 * 10**9 // 2], total=5 * 10**9, unit="B", unit_scale=True))
    assert (scaled["percent"], scaled["current"], scaled["total"]) == (30.0, 1.5e9, 5e9)
    unknown = parse(_tqdm_output([450]))
    assert unknown["current"] == 450.0 and unknown["percent"] is None and unknown["total"] is None
    assert parse(_tqdm_output([], total=10))["percent"] == 0.0  # "[00:00<?, ?it/s]": no eta, no rate yet


def test_of_several_bars_the_one_drawn_last_wins():
    out = io.StringIO()
    outer = tqdm.tqdm(total=4, file=out, mininterval=0, position=0, desc="epochs")
    inner = tqdm.tqdm(total=200, file=out, mininterval=0, position=1, desc="batches")
    outer.update(1)
    inner.update(50)
    got = parse(out.getvalue().encode())
    assert (got["current"], got["total"]) == (50.0, 200.0)
    outer.update(1)
    assert parse(out.getvalue().encode())["total"] == 4.0


@pytest.mark.parametrize("raw, percent", [
    (b"loading 12%\n", 12.0), (b"step 3\rProgress: 87.5 %\r", 87.5), (b"done 100%\nother line\n", 100.0),
    (b"45%|####5     | 450/1000 [01:23<01:40, 5.41it/s]\n12%\n", 45.0),  # a bar anywhere in the piece wins
])
def test_a_line_ending_in_a_bare_percent_is_the_fallback(raw, percent):
    assert parse(raw)["percent"] == percent


@pytest.mark.parametrize("raw", [b"", b"hello\n", b"accuracy 93% on val, loss 0.2\n", b"150%\n", b"\xff\xfe 5/3 [x"])
def test_output_without_progress_gives_none(raw):
    assert parse(raw) is None


def test_only_the_end_of_a_big_piece_is_read():
    bar = b"\r 45%|####5     | 450/1000 [01:23<01:40,  5.41it/s]"
    assert parse(bar + b"x" * (TAIL_BYTES - 10)) is None
    assert parse(b"x" * 10 * TAIL_BYTES + bar)["percent"] == 45.0


def test_a_bar_is_not_replaced_by_a_bare_percent():
    bar = parse(b"45%|####5     | 450/1000 [01:23<01:40, 5.41it/s]")
    bare = parse(b"50%\n")
    assert newer(bar, bare) is None and newer(None, bare) == bare and newer(bare, bar) == bar
    assert newer(bar, None) is None
