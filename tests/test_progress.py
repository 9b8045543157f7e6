"""Progress is a bar on a terminal and a few whole lines anywhere else (log files, CI, pipes)."""

import io

from dictlab.progress import LineProgress, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_lines_not_frames(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr("dictlab.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    bar = progress_bar(total=1000, desc="train topk", unit=" steps", file=out)
    assert isinstance(bar, LineProgress)
    with bar:
        for _ in range(1000):
            now[0] += 0.1  # 100 s in all: a line every 30 s
            bar.update(1)
            bar.set_postfix_str("loss=1.0", refresh=False)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 1 + 3 + 1, lines  # start, three periodic lines, end
    assert lines[0].startswith("train topk: 0/1000 (0%)") and lines[-1].startswith("train topk: 1000/1000 (100%)")
    assert lines[-1].endswith("loss=1.0")


def test_a_terminal_gets_a_bar_and_disabled_progress_writes_nothing() -> None:
    terminal = FakeTerminal()
    bar = progress_bar(total=3, desc="x", file=terminal)
    assert not isinstance(bar, LineProgress)
    bar.close()
    quiet = io.StringIO()
    for _ in progress_bar(range(3), desc="x", enabled=False, file=quiet):
        pass
    assert quiet.getvalue() == ""


def test_wrapping_an_iterable_counts_it() -> None:
    out = io.StringIO()
    assert list(progress_bar(range(4), desc="sweeps", file=out)) == [0, 1, 2, 3]
    assert out.getvalue().splitlines()[-1].startswith("sweeps: 4/4 (100%)")
