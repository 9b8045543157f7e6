"""A reproduction report.html opened in headless Chromium: the DOM keeps its tables and images, and the page
renders with the figure's pixels on screen (the <img> loaded through its relative link)."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from report_fixtures import PageParser, make_reproduction, render

TIMEOUT_S = 60
TAB_BLUE = np.array([31, 119, 180]) / 255  # the colour of the figure's line in make_reproduction


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("needs Debian chromium: apt-get install chromium")
    return binary


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile folder; fails the test on a non-zero exit."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium()
    out = make_reproduction(tmp_path / "runs")
    url = render(out).resolve().as_uri()

    dom = headless(binary, tmp_path / "profile-dom", "--dump-dom", url).stdout
    page = PageParser()
    page.feed(dom)
    page.close()
    assert "script" not in page.tags
    claims = page.tables[0]
    assert claims[1] == ["gap shrinks", "2.998 → 0.020", "2.87 → 0.197", "yes"]
    assert claims[2][0] == "bound a | b holds"
    assert len(page.tables) == 3 and all(len(table) > 1 for table in page.tables)
    assert [img["src"] for img in page.imgs] == ["figures/gap_curve.png"]

    shot = tmp_path / "shot.png"
    headless(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.is_file() and shot.stat().st_size > 5_000

    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert float(pixels.var()) > 1e-3, "the screenshot is a single flat colour"
    near_line = np.linalg.norm(pixels - TAB_BLUE, axis=-1) < 0.15
    assert near_line.sum() > 50, "the figure's blue line is not on screen: the <img> did not load"
