"""Generate a year of ledger records that reproduces the 2021-2022 report's figures.

The real report (2021-10-01 to 2022-10-25) counts: 406 items through the city government portal and
the campus site, of which 67 rules, 14 recruitment notices and 68 announcements; 4 stories in
external media; 7 journal issues; 260 WeChat posts; 37 tender notices. This script writes a CSV in
``publisher import`` format whose counts are exactly those, with the shapes that make counting hard:
recruitment notices on the site, the city portal and the HR site at once (one item, three
publications); tenders on the site and the procurement site; news cross-posted to WeChat; journal
issues with no URL; and three records just outside the period (one at 23:30 on 30 September and one
at 00:10 on 26 October, Beijing time) plus one at 00:30 on 1 October that belongs inside it.

    python tests/data/make_year_csv.py OUT.csv
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

START, END = date(2021, 10, 1), date(2022, 10, 25)
CHANNELS = ["website", "city_portal", "wechat", "media", "journal", "procurement", "hr_site"]
EXPECTED = {
    "site_items": 406,
    "site_rules": 67,
    "site_recruitment": 14,
    "site_announcements": 68,
    "media_items": 4,
    "journal_issues": 7,
    "wechat_posts": 260,
    "tenders": 37,
    "recruitment": 14,
    "awards": 30,
    "requests_received": 0,
    "complaints_received": 0,
}
DEPTS = ["校长办公室", "党委宣传部", "人事处", "教务处", "招生就业处", "财务处", "资产管理处", "学生工作部"]
HEADER = ["title", "category", "department", "channel", "published_at", "url", "checklist_item"]


def rows(seed: int = 2022) -> list[list[str]]:
    rnd = random.Random(seed)
    days = (END - START).days + 1
    out: list[list[str]] = []

    def when(k: int, n: int) -> str:
        d = START + timedelta(days=(k * days) // n)
        t = time(rnd.randint(8, 17), rnd.randint(0, 59), rnd.randint(0, 59))
        return datetime.combine(d, t).strftime("%Y-%m-%d %H:%M:%S")

    def url(host: str, n: int) -> str:
        return f"http://{host}/info/{n}.htm"

    serial = 0

    def add(title: str, cat: str, dept: str, places: list[tuple[str, str]], at: str, checklist: str = "") -> None:
        nonlocal serial
        for ch, host in places:
            serial += 1
            out.append([title, cat, dept, ch, at, url(host, serial) if host else "", checklist])

    site = ("website", "www.qqhrtc.com")
    portal = ("city_portal", "www.qqhr.gov.cn")
    for k in range(67):  # rules: the site, the first dozen also on the city portal
        places = [site, portal] if k < 12 else [site]
        add(f"关于印发《管理办法（第{k + 1}号）》的通知", "规章制度", DEPTS[k % 8], places, when(k, 67), "2")
    for k in range(14):  # recruitment: site + city portal + HR site
        add(
            f"{2021 + k // 7}年公开招聘工作人员公告（第{k + 1}批）",
            "招聘信息",
            "人事处",
            [site, portal, ("hr_site", "hrss.qqhr.gov.cn")],
            when(k, 14),
            "25",
        )
    for k in range(68):  # announcements
        add(f"公示：第{k + 1}号", "公告公示", DEPTS[(k + 3) % 8], [site], when(k, 68))
    for k in range(37):  # tenders: site + procurement site
        add(
            f"采购项目招标公告 QQHRTC-2022-{k + 1:03d}",
            "招标公告",
            "资产管理处",
            [site, ("procurement", "www.ccgp-heilongj.gov.cn")],
            when(k, 37),
            "18",
        )
    for k in range(30):  # award notices: site + procurement site
        add(
            f"采购项目中标公告 QQHRTC-2022-{k + 1:03d}",
            "中标公告",
            "资产管理处",
            [site, ("procurement", "www.ccgp-heilongj.gov.cn")],
            when(k, 30),
            "18",
        )
    site_news = 406 - 67 - 14 - 68 - 37 - 30  # the rest of the 406: news on the site, some cross-posted
    for k in range(site_news):
        places = [site, ("wechat", "mp.weixin.qq.com")] if k < 60 else [site]
        at = "2021-10-01 00:30:00" if k == 0 else when(k, site_news)
        add(f"学校新闻：第{k + 1}期", "新闻", DEPTS[1], places, at)
    for k in range(260 - 60):  # WeChat-only posts
        add(f"微信推送：第{k + 1}期", "新闻", "党委宣传部", [("wechat", "mp.weixin.qq.com")], when(k, 200))
    for k in range(4):
        add(f"媒体报道：第{k + 1}篇", "新闻", "党委宣传部", [("media", "www.qqhrnews.com")], when(k, 4))
    for k in range(7):  # journal issues: print, most without a URL
        add(
            f"《学报》2022年第{k + 1}期",
            "学报",
            "校长办公室",
            [("journal", "xb.qqhrtc.com" if k == 0 else "")],
            when(k, 7),
        )
    # just outside the period, in Beijing time
    add("期外新闻：九月三十日深夜", "新闻", "党委宣传部", [site, ("wechat", "mp.weixin.qq.com")], "2021-09-30 23:30:00")
    add("期外公告：十月二十六日凌晨", "公告公示", "校长办公室", [site], "2022-10-26 00:10:00")
    add("信息公开年度报告（2020-2021）", "公告公示", "校长办公室", [site], "2021-09-28 10:00:00", "6")
    return out


def write(path: Path, seed: int = 2022, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows(seed))
    return path


if __name__ == "__main__":
    p = write(Path(sys.argv[1] if len(sys.argv) > 1 else "year-2021-2022.csv"))
    print(f"wrote {p}")
