"""Shared by the ledger tests: the channels of the generated year, and importing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publisher.counting import ledger
from tests.data import make_year_csv

#: the generated year's channels, all memory channels in tests (manual ones are type "manual" in use)
LABELS = {
    "website": "学校校园网主页",
    "city_portal": "齐齐哈尔市人民政府网站",
    "wechat": "微信公众号",
    "media": "外界媒体（网络、报纸、电视台）",
    "journal": "《学报》",
    "procurement": "黑龙江省政府采购网",
    "hr_site": "市人力资源网站",
}
YEAR_CHANNELS = {name: {"type": "memory", "label": LABELS[name]} for name in make_year_csv.CHANNELS}
REPORT_SETTINGS = {
    "site_channels": ["website", "city_portal"],
    "wechat_channels": ["wechat"],
    "media_channels": ["media"],
    "journal_channels": ["journal"],
}


def year_app(make_app: Any, **overrides: Any) -> Any:
    return make_app(channels=dict(YEAR_CHANNELS), report=dict(REPORT_SETTINGS), **overrides)


def import_year(app: Any, tmp_path: Path, **kw: Any) -> ledger.ImportResult:
    path = make_year_csv.write(tmp_path / "year.csv")
    with app.session() as s:
        return ledger.import_csv(app.ctx, s, data=path.read_bytes(), source=path.name, actor="ed", **kw)
