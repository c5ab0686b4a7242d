"""The Grafana dashboard only charts metrics the node really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from tests.conftest import RunningServer

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana-dashboard.json"


async def test_every_dashboard_metric_is_exported(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        exported = set(re.findall(r"^# TYPE (\w+) (\w+)", await resp.text(), re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {
        m for p in panels for t in p["targets"] for m in re.findall(r"chatserver_\w+", t["expr"])
    }
    assert used, "the dashboard charts nothing"
    assert used - names == set()
