"""HTML figures open without internet: rendered in headless Chromium with the network blocked."""
import http.server
import json
import re
import shutil
import subprocess
import threading
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from search.plots import write_figure
from search.plots.io import write_plotlyjs
from search.plots.pareto import history_figure, pareto_figure, spread_column

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH to render the HTML")

# every request, loopback included, goes to a proxy on the discard port (nothing listens there); names resolve nowhere
NO_NETWORK = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND"]


def trials() -> pd.DataFrame:
    """A small synthesis study as ``search.table.trials_frame`` shapes it: 3 on the front, 2 dominated, 1 failed."""
    return pd.DataFrame({
        "number": range(6),
        "state": ["COMPLETE"] * 5 + ["FAIL"],
        "pareto": [True, True, False, True, False, False],
        "preset": ["tcm-small", None, None, None, None, None],
        "config_id": [f"cfg{i}" for i in range(6)],
        "psnr": [30.0, 31.0, 29.5, 32.0, 30.5, None],
        "decoder_gmacs": [10.0, 20.0, 25.0, 40.0, 45.0, None],
        "param_g_block": ["convtrans", "resblock", "convtrans", "resblock", "convtrans", "convtrans"],
        "param_g_width_0": [128, 192, 128, 256, 192, 128],
    })


# markers drawn: 2 dominated + 3 on the front + 1 preset star (legend symbols are class="scatterpts", not counted)
POINTS = 6


def render(url: str, tmp_path: Path, network: bool = False) -> str:
    """The DOM of ``url`` after headless Chromium ran its scripts (network blocked unless ``network``)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=10000", *([] if network else NO_NETWORK), "--dump-dom", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'class="plotly-graph-div' in out.stdout, "chromium did not load the page"
    return out.stdout


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def rendered(dom: str) -> bool:
    return 'class="main-svg"' in dom


@needs_chromium
def test_figures_share_one_plotlyjs_and_render_offline(tmp_path):
    out = tmp_path / "results" / "study"
    paths = write_figure(pareto_figure(trials(), "synthesis", "offline"), out / "pareto", png=False)
    hv = pd.DataFrame({"number": [0, 1, 3], "hypervolume": [0.2, 0.5, 0.7]})
    paths += write_figure(history_figure(hv), out / "history", png=False)
    assert paths == [out / "pareto.html", out / "history.html"]
    js = list(out.glob("*.js"))
    assert [p.name for p in js] == [write_plotlyjs(out).name]  # one shared copy, referenced by both
    for p in paths:
        html = p.read_text()
        assert f'src="{js[0].name}"' in html and "cdn.plot.ly" not in html
        assert p.stat().st_size < 100_000  # the library is not inside
    moved = shutil.move(out, tmp_path / "copied")  # the folder opens wherever it goes: the reference is relative
    dom = render((Path(moved) / "pareto.html").as_uri(), tmp_path)
    assert rendered(dom)
    assert dom.count('class="point"') == POINTS
    assert ">offline<" in dom  # the title was drawn
    dom = render((Path(moved) / "history.html").as_uri(), tmp_path)
    assert dom.count('class="point"') == 3


@needs_chromium
def test_embedded_figure_renders_alone_offline(tmp_path):
    (path,) = write_figure(pareto_figure(trials(), "synthesis"), tmp_path / "made" / "pareto", png=False, embed=True)
    assert list(path.parent.iterdir()) == [path] and path.stat().st_size > 3_000_000
    alone = shutil.copy(path, tmp_path / "alone.html")
    dom = render(Path(alone).as_uri(), tmp_path)
    assert rendered(dom) and dom.count('class="point"') == POINTS


@needs_chromium
def test_cdn_figure_is_blank_offline_and_the_block_is_real(tmp_path):
    fig = pareto_figure(trials(), "synthesis")
    cdn = tmp_path / "cdn.html"
    cdn.write_text(fig.to_html(include_plotlyjs="cdn"))  # what write_figure used to write
    assert not rendered(render(cdn.as_uri(), tmp_path))

    # the block is the flags' doing, not this machine's lack of internet: plotly.js served over loopback HTTP
    # renders with the network on and not with it blocked
    write_plotlyjs(tmp_path)
    served = tmp_path / "served.html"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{write_plotlyjs(tmp_path).name}"
        served.write_text(fig.to_html(include_plotlyjs=url))
        on = render(served.as_uri(), tmp_path, network=True)
        off = render(served.as_uri(), tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert rendered(on) and on.count('class="point"') == POINTS
    assert not rendered(off)


def test_plotlyjs_written_once_and_repaired(tmp_path):
    path = write_plotlyjs(tmp_path)
    data = path.read_bytes()
    assert path.name.startswith("plotly-") and path.name.endswith(".min.js") and len(data) > 3_000_000
    inode = path.stat().st_ino
    assert write_plotlyjs(tmp_path) == path and path.stat().st_ino == inode  # same content: left alone
    path.write_bytes(data[:1000])  # a truncated copy (an interrupted scp) is replaced
    write_plotlyjs(tmp_path)
    assert path.read_bytes() == data and path.stat().st_ino != inode
    assert not list(tmp_path.glob("*.tmp"))


def bars(dom: str) -> list:
    """Lengths (px) of the vertical error bars drawn: each path is M x,y h.. m.. V y2 ..."""
    return [abs(float(y2) - float(y1)) for y1, y2 in
            re.findall(r'class="yerror" d="M[-\d.]+,([-\d.]+)h[-\d.]+m[-\d.]+,[-\d.]+V([-\d.]+)', dom)]


def test_pareto_figure_draws_seed_spread_as_error_bars_and_is_unchanged_without_it():
    plain = pareto_figure(trials(), "synthesis")
    assert all(t.error_y.array is None and t.error_x.array is None for t in plain.data)
    df = trials().assign(psnr_std=[0.2, 0.3, 0.4, None, 0.1, None])  # trial 3: one seed, no spread
    fig = pareto_figure(df, "synthesis")
    by = {t.name: t for t in fig.data}
    assert list(by["Pareto front"].error_y.array) == [0.2, 0.3, 0.0]  # trials 0, 1, 3 by MACs
    assert list(by["dominated"].error_y.array) == [0.4, 0.1]
    assert list(by["tcm-small (preset)"].error_y.array) == [0.2]
    assert all(t.error_x.array is None for t in fig.data)  # no spread of the MACs: no horizontal bars
    # everything else is the figure as drawn without seed data
    seeded = json.loads(fig.to_json())
    for t in seeded["data"]:
        t.pop("error_y", None)
    assert seeded == json.loads(plain.to_json())


def test_a_confirmation_style_mean_and_std_give_error_bars():
    df = trials().rename(columns={"psnr": "test_psnr_mean"}).assign(test_psnr_std=[0.1, 0.2, 0.3, 0.4, 0.5, None])
    assert spread_column(df, "test_psnr_mean") == "test_psnr_std" and spread_column(df, "psnr") is None
    assert spread_column(df.assign(psnr_std=0.1), "psnr") == "psnr_std"
    fig = pareto_figure(df, "synthesis", y="test_psnr_mean")
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.y) == [30.0, 31.0, 32.0] and list(front.error_y.array) == [0.1, 0.2, 0.4]


@needs_chromium
def test_error_bars_render_offline(tmp_path):
    df = trials().assign(psnr_std=[0.2, 0.3, 0.4, None, 0.1, None])
    (path,) = write_figure(pareto_figure(df, "synthesis"), tmp_path / "seeded" / "pareto", png=False)
    dom = render(path.as_uri(), tmp_path)
    assert rendered(dom) and dom.count('class="point"') == POINTS
    drawn = bars(dom)
    assert len(drawn) == POINTS and sum(b > 1 for b in drawn) == POINTS - 1  # trial 3's bar has length 0
    (path,) = write_figure(pareto_figure(trials(), "synthesis"), tmp_path / "plain" / "pareto", png=False)
    assert bars(render(path.as_uri(), tmp_path)) == []
