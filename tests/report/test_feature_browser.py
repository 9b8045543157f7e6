"""The offline feature browser opened from file:// in headless Chromium: the index's sort, filter and page state
comes from the URL hash, latent.html#<id> loads its chunk and shows the planted token values and the diagnosis
links, and a missing data file turns into a message on the page."""

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from dictlab.features.report import (
    Context,
    FeatureReport,
    FeatureSource,
    Histogram,
    LabelScore,
    LatentDiagnosis,
    LatentFeatures,
    Neighbour,
    QuantileBand,
    TokenScore,
)
from dictlab.report.feature_browser import write_browser

TIMEOUT_S = 60
N_LATENTS = 300
CHUNK = 64
DEAD = (5, 250)
SHARED = tuple(range(3, N_LATENTS, 50))  # latents whose top token is the HTML-special SHARED_TOKEN
SHARED_TOKEN = ' <b>&"x'
# latent 7's first top context: token strings, activations (None: no row) and the row's own token
PLANTED_TOKENS = {10: "Hello", 11: " world", 12: "\n", 13: " <script>", 14: "&amp"}
PLANTED_VALUES = [0.0, 0.5, None, 2.25, 1.75]
PLANTED_CENTRE = 3
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def density(i: int) -> float:
    return 0.0 if i in DEAD else ((i * 37) % N_LATENTS + 1) / 1000


def context(i: int, k: int) -> Context:
    tokens = [1 + (i + j) % 40 for j in range(5)]
    values: list[float | None] = [0.0, 0.25 * k, 1.0 + 0.5 * k, 0.0, None]
    return Context(row=100 * i + k, text=i, position=k + 2, value=1.0 + 0.5 * k, tokens=tokens, centre=2, values=values)


def latent(i: int) -> LatentFeatures:
    dead = i in DEAD
    diagnosis = None
    if i == 7:
        diagnosis = LatentDiagnosis(
            flags=["nested-child"], nested_partner=12, nested_role="child", absorption_ratio=0.25
        )
    elif i == 12:
        diagnosis = LatentDiagnosis(flags=["nested-parent"], nested_partner=7, nested_role="parent", residual_share=0.5)
    elif i % 30 == 0:
        diagnosis = LatentDiagnosis(flags=["dense"], dense=True, split_pressure=1.5)
    if dead:
        return LatentFeatures(
            latent=i, count=0, density=0.0, dead=True, mean=0.0, max=0.0, histogram=Histogram(edges=[0.0], counts=[]),
            top=[], quantiles=[], top_token=None, top_token_share=0.0, cofiring=[], decoder=[],
        )  # fmt: skip
    top = [context(i, k) for k in (2, 1, 0)]
    if i == 7:
        top[0] = Context(
            row=700, text=7, position=3, value=2.25, tokens=list(PLANTED_TOKENS), centre=PLANTED_CENTRE,
            values=PLANTED_VALUES, ablation_effect=[None, -0.5, 0.25, 1.0, None],
        )  # fmt: skip
    band = QuantileBand(
        lower_quantile=0.0, upper_quantile=0.5, lower=0.5, upper=1.0, count=40, contexts=[context(i, 0)]
    )
    top_token = 900 if i in SHARED else 1000 + i
    return LatentFeatures(
        latent=i,
        count=int(density(i) * 10_000),
        density=density(i),
        dead=False,
        mean=1.0 + i / 1000,
        max=2.25 if i == 7 else 2.0,
        histogram=Histogram(edges=[0.0, 0.5, 1.0, 1.5, 2.0], counts=[5, 9, 3, 1 + i % 4]),
        top=top,
        quantiles=[band],
        top_token=top_token,
        top_token_share=0.75,
        cofiring=[Neighbour(latent=(i + 1) % N_LATENTS, score=0.5)],
        decoder=[Neighbour(latent=(i + 2) % N_LATENTS, score=0.25)],
        logits_top=[TokenScore(token=1000 + i, score=3.5)],
        logits_bottom=[TokenScore(token=1, score=-2.0)],
        labels=[LabelScore(label=i, name=f"label-{i:03d}", precision=0.5, recall=0.25, f1=0.333)],
        best_label=f"label-{i:03d}",
        top_label_share=0.5,
        diagnosis=diagnosis,
    )


def make_report() -> FeatureReport:
    vocabulary = {t: f"w{t}" for t in range(1, 41)} | PLANTED_TOKENS | {900: SHARED_TOKEN}
    vocabulary |= {1000 + i: f" tok{i:03d}" for i in range(N_LATENTS)}
    source = FeatureSource(
        run="runs/sae", store="stores/s", module="blocks.1", model="tiny", rows=10_000, first_row=0, d_sae=N_LATENTS,
        d_in=16, activation="topk", window=2, label_names=[],
    )  # fmt: skip
    return FeatureReport(source=source, latents=[latent(i) for i in range(N_LATENTS)], vocabulary=vocabulary)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    ancestors: list["Element"]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def inside(self, element_id: str) -> bool:
        return any(a.attrs.get("id") == element_id for a in self.ancestors)

    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()


class Dom(HTMLParser):
    """Every element of a dumped page with its attributes, ancestors and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), list(self._open))
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, dict(attrs), list(self._open)))

    def handle_endtag(self, tag: str) -> None:
        for k in range(len(self._open) - 1, -1, -1):
            if self._open[k].tag == tag:
                del self._open[k:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def by_id(self, element_id: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == element_id), None)

    def rows(self) -> list[int]:
        """Latent ids of the index table's rows, top to bottom."""
        return [int(e.attrs["data-latent"] or "") for e in self.elements if e.tag == "tr" and "data-latent" in e.attrs]

    def links(self, element_id: str) -> list[str]:
        return [e.attrs.get("href") or "" for e in self.elements if e.tag == "a" and e.inside(element_id)]


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("needs Debian chromium: apt-get install chromium")
    return binary


def headless(profile: Path, *args: str) -> str:
    """Run headless Chromium with a fresh profile; virtual time lets the added <script> tags load first."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", *args,
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def dump_all(tmp_path: Path, urls: dict[str, str]) -> dict[str, Dom]:
    """The DOM of every url after its scripts ran, two browsers at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        dumps = {
            name: pool.submit(headless, tmp_path / f"profile-{name}", "--dump-dom", url) for name, url in urls.items()
        }
        return {name: Dom(future.result()) for name, future in dumps.items()}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "features"
    index = write_browser(make_report(), out, chunk=CHUNK)
    assert index == out / "index.html"
    return out


def test_folder_is_offline_and_chunked(browser: Path) -> None:
    chunks = sorted(p.name for p in (browser / "data").glob("latents-*.js"))
    assert chunks == [f"latents-{k:05d}.js" for k in range(5)]  # 300 latents, 64 per file
    assert {p.name for p in browser.iterdir()} == {"index.html", "latent.html", "app.js", "style.css", "data"}
    for name in ("index.html", "latent.html", "app.js"):
        text = (browser / name).read_text(encoding="utf-8")
        assert (
            "http://" not in text and "https://" not in text and "fetch(" not in text and "XMLHttpRequest" not in text
        )
    index_js = (browser / "data" / "index.js").read_text(encoding="utf-8")
    assert index_js.startswith("dictlabData.index(") and "Hello" not in index_js  # no contexts in the index
    assert "</" not in (browser / "data" / "latents-00000.js").read_text(encoding="utf-8")


def test_pages_in_headless_chromium(browser: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(browser, broken)
    (broken / "data" / "latents-00000.js").unlink()
    (broken / "data" / "index.js").unlink()
    index, latent_page = (browser / "index.html").as_uri(), (browser / "latent.html").as_uri()
    quoted_token = "%20%3Cb%3E%26%22x"  # SHARED_TOKEN, percent-encoded
    doms = dump_all(
        tmp_path,
        {
            "all": index + "#sort=-density&per=1000",
            "ascending": index + "#sort=density",
            "page3": index + "#page=3&hidedead=1",
            "query": index + "#q=" + quoted_token,
            "flag": index + "#flag=nested-child",
            "latent7": latent_page + "#7",
            "latent12": latent_page + "#12",
            "no-chunk": (broken / "latent.html").as_uri() + "#7",
            "no-index": (broken / "index.html").as_uri(),
        },
    )
    by_density = sorted(range(N_LATENTS), key=lambda i: (density(i), i))

    rows = doms["all"].rows()
    assert sorted(rows) == list(range(N_LATENTS))  # one row per latent, the dead ones included
    assert rows[0] == max(range(N_LATENTS), key=density) and rows[0] != doms["ascending"].rows()[0]
    assert [density(i) for i in rows] == sorted(map(density, range(N_LATENTS)), reverse=True)
    dead_rows = [e for e in doms["all"].elements if e.tag == "tr" and "dead" in e.classes()]
    assert sorted(int(e.attrs["data-latent"] or "") for e in dead_rows) == sorted(DEAD)

    ascending = doms["ascending"]
    assert ascending.rows() == by_density[:100]
    count = ascending.by_id("count")
    assert count is not None and "300 latents" in count.text
    assert doms["page3"].rows() == [i for i in range(N_LATENTS) if i not in DEAD][200:]
    count = doms["page3"].by_id("count")
    assert count is not None and "298 of 300" in count.text

    query = doms["query"]
    assert query.rows() == list(SHARED)
    cells = [e.text for e in query.elements if e.tag == "td" and e.inside("rows") and "<b>" in e.text]
    assert cells == ['·<b>&"x'] * len(SHARED)  # the token escaped, its leading space visible
    assert doms["flag"].rows() == [7]

    tokens = [e for e in doms["latent7"].elements if e.tag == "span" and "tok" in e.classes() and e.inside("top")]
    first = tokens[: len(PLANTED_TOKENS)]  # the first context: values, not the ablation line
    assert [e.text for e in first] == ["Hello", " world", "↵", " <script>", "&amp"]
    assert [e.attrs.get("data-value") for e in first] == ["0", "0.5", None, "2.25", "1.75"]
    assert [e.attrs.get("title") for e in first] == ["0", "0.5", "no row in the store", "2.25", "1.75"]
    assert [e.attrs.get("data-token") for e in first] == [str(t) for t in PLANTED_TOKENS]
    assert [i for i, e in enumerate(first) if "centre" in e.classes()] == [PLANTED_CENTRE]
    assert "background" in (first[3].attrs.get("style") or "") and "style" not in first[0].attrs
    effects = [e.attrs.get("data-effect") for e in tokens[len(PLANTED_TOKENS) : 2 * len(PLANTED_TOKENS)]]
    assert effects == [None, "-0.5", "0.25", "1", None]
    assert "latent.html#12" in doms["latent7"].links("diagnosis")
    assert "latent.html#7" in doms["latent12"].links("diagnosis")
    assert "latent.html#8" in doms["latent7"].links("neighbours")  # co-firing
    assert any(e.tag == "svg" and e.inside("histogram") for e in doms["latent7"].elements)

    for name, missing in (("no-chunk", "data/latents-00000.js"), ("no-index", "data/index.js")):
        error = doms[name].by_id("error")
        assert error is not None and f"{missing} is missing" in error.text, name
        assert not doms[name].rows() and not any("tok" in e.classes() for e in doms[name].elements), name


HARNESS = """<!DOCTYPE html><html><body><pre id="log">pending</pre>
<iframe id="index" src="INDEX"></iframe><iframe id="latent" src="LATENT"></iframe>
<script>
const log = {};
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(test) {
  for (let i = 0; i < 250; i++) { if (test()) return; await wait(20); }
  throw new Error("timed out: " + test);
}
function firstRow(w) { return Number(w.document.querySelector("#rows tr").dataset.latent); }
async function run() {
  const a = document.getElementById("index").contentWindow;
  await until(() => a.document.querySelector("#rows tr"));
  const density = a.document.querySelector('th[data-key="density"]');
  density.click();
  log.clicked = [a.location.hash, firstRow(a)];
  density.click();
  log.clickedAgain = [a.location.hash, firstRow(a)];
  a.document.querySelector('#pager-top button[data-page="2"]').click();
  log.next = [a.location.hash, firstRow(a)];
  const q = a.document.getElementById("q");
  q.value = "label-04";
  q.dispatchEvent(new Event("input"));
  log.typed = [a.location.hash, a.document.querySelectorAll("#rows tr").length];
  a.location.hash = "flag=nested-parent";
  await until(() => a.document.querySelectorAll("#rows tr").length === 1);
  log.hash = [a.document.getElementById("flag").value, a.document.getElementById("q").value, firstRow(a)];
  const b = document.getElementById("latent").contentWindow;
  await until(() => b.document.querySelector("#diagnosis a"));
  b.notReloaded = true;
  b.document.querySelector("#diagnosis a").click();
  await until(() => b.document.querySelector("h1").textContent.startsWith("Latent 12"));
  log.followed = [b.location.hash, b.notReloaded === true];
}
window.onload = () => run().catch((e) => { log.error = String(e); }).finally(() => {
  document.getElementById("log").textContent = JSON.stringify(log);
});
</script></body></html>
"""


def test_ui_changes_update_the_hash(browser: Path, tmp_path: Path) -> None:
    """Clicks and typing rewrite the index's hash; a hash change re-renders; a link on latent.html moves to
    another latent without reloading the page."""
    harness = tmp_path / "harness.html"
    index, latent_page = (browser / "index.html").as_uri(), (browser / "latent.html").as_uri()
    harness.write_text(HARNESS.replace("INDEX", index).replace("LATENT", latent_page + "#7"), encoding="utf-8")
    dom = Dom(headless(tmp_path / "profile", "--allow-file-access-from-files", "--dump-dom", harness.as_uri()))
    log_element = dom.by_id("log")
    assert log_element is not None
    log = json.loads(log_element.text)
    by_density = sorted(range(N_LATENTS), key=lambda i: (density(i), i))
    assert "error" not in log, log
    assert log["clicked"] == ["#sort=-density", max(range(N_LATENTS), key=density)]
    assert log["clickedAgain"] == ["#sort=density", by_density[0]]
    assert log["next"] == ["#sort=density&page=2", by_density[100]]
    assert log["typed"] == ["#sort=density&q=label-04", 10]
    assert log["hash"] == ["nested-parent", "", 12]
    assert log["followed"] == ["#12", True]


def test_latent_page_screenshot(browser: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    headless(
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        (browser / "latent.html").as_uri() + "#7",
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert float(pixels.var()) > 1e-3, "the screenshot is a single flat colour"
    orange = np.linalg.norm(pixels - np.array([240, 140, 30]) / 255, axis=-1) < 0.12
    assert orange.sum() > 200, "no histogram bars on screen: the chunk did not load"
