"""A running localnet, watched from outside: each node's /metrics over HTTP, and the
validator's status page in headless Chromium. One localnet serves every test here;
the last test stops it and checks what it recorded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STARTUP_SECONDS = 180.0
T = TypeVar("T")


@dataclass
class LiveLocalnet:
    process: subprocess.Popen
    output: Path  # the localnet's stdout and stderr
    run: Path  # its run directory
    urls: dict  # urls.json: {"metrics": {node: url}, "status_page": url}

    def log(self) -> str:
        return self.output.read_text()[-4000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the localnet stops its children itself
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _find_run(run_dir: Path, process: subprocess.Popen, output: Path) -> Path:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = list(run_dir.glob("*/urls.json"))
        if found:
            return found[0].parent
        if process.poll() is not None:
            pytest.fail(f"localnet exited ({process.returncode}):\n{output.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"localnet wrote no urls.json in {STARTUP_SECONDS:.0f}s:\n{output.read_text()}")


@pytest.fixture(scope="module")
def localnet(
    tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path
) -> Iterator[LiveLocalnet]:
    run_dir = tmp_path_factory.mktemp("localnet-telemetry")
    output = run_dir / "localnet.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gauntlet.cli", "localnet",
                "--localnet.windows", "40",  # more than the tests need: the last test stops it
                "--localnet.run_dir", str(run_dir),
                "--data.dataset_dir", str(stdlib_dataset_dir),
                "--train.inner_steps", "5",  # light enough to stay on time on a busy machine
                # pay from the first evaluation: the weights test waits for weights to be
                # set, which the defaults (3 evaluations, the uniqueness floor) delay by
                # windows; nothing here tests when scores start to pay
                "--scoring.pay_min_evaluations", "1", "--scoring.uniqueness_floor", "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
        )  # fmt: skip
    live: LiveLocalnet | None = None
    try:
        run = _find_run(run_dir, process, output)
        live = LiveLocalnet(process, output, run, json.loads((run / "urls.json").read_text()))
        yield live
    finally:
        if live is not None:
            live.stop()
        elif process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics page, parsed by prometheus_client's own text parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(_get(url))
        for s in family.samples
    }


def _sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _poll(live: LiveLocalnet, what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.process.poll() is not None:
            pytest.fail(f"localnet exited ({live.process.returncode}):\n{live.log()}")
        try:
            result = probe()
        except OSError:  # the node is not listening yet
            result = None
        if result is not None:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{live.log()}")


def _two_windows(url: str, gauge: str, **labels: str) -> Callable[[], list | None]:
    """A probe that records (window, value) per scrape until it has seen two of each."""
    seen: list[tuple[float, float]] = []

    def probe() -> list | None:
        samples = _scrape(url)
        window, value = _sample(samples, "gauntlet_window"), _sample(samples, gauge, **labels)
        if window is not None and value is not None:
            seen.append((window, value))
        windows, values = {w for w, _ in seen}, {v for _, v in seen}
        return seen if len(windows) >= 2 and len(values) >= 2 else None

    return probe


def test_every_node_serves_its_metrics_at_the_url_the_localnet_recorded(
    localnet: LiveLocalnet,
) -> None:
    metrics = localnet.urls["metrics"]
    assert {"validator0", "miner0", "miner1", "miner2"} <= set(metrics)
    assert f"status page {localnet.urls['status_page']} (validator0)" in localnet.output.read_text()
    for node, url in metrics.items():
        role = "validator" if node.startswith("validator") else "miner"
        samples = _poll(localnet, f"{node} metrics", lambda url=url: _scrape(url), 120)
        infos = [dict(labels) for name, labels in samples if name == "gauntlet_node_info"]
        assert [i["role"] for i in infos] == [role], infos


def test_a_miner_reports_a_new_window_and_a_new_training_loss(localnet: LiveLocalnet) -> None:
    url = localnet.urls["metrics"]["miner0"]
    seen = _poll(
        localnet,
        "two windows of miner0",
        _two_windows(url, "gauntlet_train_loss", step="last"),
        180,
    )
    assert seen[-1][0] > seen[0][0]
    assert (_sample(_scrape(url), "gauntlet_train_tokens_per_second") or 0) > 0


def test_miners_count_the_bytes_and_time_of_their_uploads(localnet: LiveLocalnet) -> None:
    miners = [url for node, url in localnet.urls["metrics"].items() if node.startswith("miner")]

    def uploaded() -> dict | None:
        # On a loaded machine a miner may miss a window's deadline: any miner's upload will do.
        for url in miners:
            samples = _scrape(url)
            if _sample(samples, "gauntlet_upload_seconds_count", artifact="contribution"):
                return samples
        return None

    samples = _poll(localnet, "a miner's upload", uploaded, 180)
    assert (_sample(samples, "gauntlet_upload_bytes_total", artifact="contribution") or 0) > 0


def test_the_validator_reports_new_windows_losses_and_per_uid_scores(
    localnet: LiveLocalnet,
) -> None:
    url = localnet.urls["metrics"]["validator0"]
    probe = _two_windows(url, "gauntlet_validation_loss", stage="after")
    seen = _poll(localnet, "two windows of validator0", probe, 180)
    assert seen[-1][0] > seen[0][0]
    samples = _scrape(url)
    assert _sample(samples, "gauntlet_peers", state="registered") == 3
    uids = {dict(labels)["uid"] for name, labels in samples if name == "gauntlet_peer_weight"}
    assert len(uids) == 3


def test_the_validator_counts_downloads_and_weight_setting(localnet: LiveLocalnet) -> None:
    url = localnet.urls["metrics"]["validator0"]

    def downloaded_and_set() -> dict | None:
        samples = _scrape(url)
        done = _sample(samples, "gauntlet_download_seconds_count", artifact="contribution")
        return (
            samples
            if done and _sample(samples, "gauntlet_weights_set_total", result="success")
            else None
        )

    samples = _poll(localnet, "a download and weights set by validator0", downloaded_and_set, 180)
    assert (_sample(samples, "gauntlet_download_bytes_total", artifact="contribution") or 0) > 0


class _Leaderboard(HTMLParser):
    """The uid column (the second cell) of each row of the table with id="leaderboard"."""

    def __init__(self) -> None:
        super().__init__()
        self.uids: list[str] = []
        self._in_table = False
        self._cell = -1
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._in_table = ("id", "leaderboard") in attrs
        elif self._in_table and tag == "tr":
            self._cell = -1
        elif self._in_table and tag == "td":
            self._cell += 1
            self._text = ""

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif self._in_table and tag == "td" and self._cell == 1:
            self.uids.append(self._text.strip())


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail(
        "headless Chromium is needed for the status page test and was not found "
        "(chromium / chromium-browser on PATH): install it with `apt-get install -y chromium`"
    )


def test_the_status_page_shows_every_miner_in_headless_chromium(
    localnet: LiveLocalnet, tmp_path: Path
) -> None:
    browser = _chromium()
    status = localnet.urls["status_page"]

    def scored() -> dict | None:
        data = json.loads(_get(status + "status.json"))
        return data if data["leaderboard"] else None

    _poll(localnet, "a scored window on the status page", scored, 180)
    miner_uids = set()
    for node, url in localnet.urls["metrics"].items():
        if node.startswith("miner"):
            infos = [dict(labels) for name, labels in _scrape(url) if name == "gauntlet_node_info"]
            miner_uids.add(infos[0]["uid"])
    completed = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", status,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Gauntlet validator status" in completed.stdout
    table = _Leaderboard()
    table.feed(completed.stdout)
    assert set(table.uids) == miner_uids, completed.stdout[-3000:]


def test_stopping_records_the_urls_in_the_summary_and_leaves_no_process(
    localnet: LiveLocalnet,
) -> None:
    assert localnet.stop() == 130  # interrupted, like Ctrl-C
    summary = json.loads((localnet.run / "summary.json").read_text())
    assert summary["metrics"] == localnet.urls["metrics"]
    assert summary["status_page"] == localnet.urls["status_page"]
    assert summary["pids"]
    for pid in summary["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
