"""The statistics of the WeChat sandbox (``/datacube/*``): deterministic, plausible numbers per article and day."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from channels.sandbox.wechat.state import BEIJING, Answer


class DatacubeMixin:
    """Answers the datacube with spans and dates checked as WeChat checks them."""

    def _span(self, body: bytes, max_days: int, path: str = "") -> list[date]:
        data = self._body_json(body)
        try:
            begin = date.fromisoformat(str(data["begin_date"]))
            end = date.fromisoformat(str(data["end_date"]))
        except (KeyError, ValueError) as exc:
            raise Answer(61500) from exc
        yesterday = datetime.now(BEIJING).date() - timedelta(days=1)
        if end < begin or end > yesterday or (end - begin).days + 1 > max_days:
            raise Answer(61501)
        with self._lock:
            self._s.datacube.append({"path": path, "begin_date": begin.isoformat(), "end_date": end.isoformat()})
        return [begin + timedelta(days=i) for i in range((end - begin).days + 1)]

    def _article_counts(self, art: dict, day: date) -> dict[str, int]:
        published = datetime.fromtimestamp(art["publish_time"], BEIJING).date()
        age = (day - published).days
        if age < 0:
            return {}
        seed = int(hashlib.sha256(f"{art['article_id']}:{day}".encode()).hexdigest()[:8], 16)
        base = 200 + int(hashlib.sha256(art["article_id"].encode()).hexdigest()[:4], 16) % 800
        reads = max(0, int(base / (1 + age) ** 1.5) + seed % 17)
        users = max(0, int(reads * 0.8))
        shares = reads // 25 + seed % 3
        favs = reads // 40 + seed % 2
        return {
            "int_page_read_user": users,
            "int_page_read_count": reads,
            "ori_page_read_user": users // 10,
            "ori_page_read_count": reads // 10,
            "share_user": shares,
            "share_count": shares + shares // 5,
            "add_to_fav_user": favs,
            "add_to_fav_count": favs,
        }

    def r_articlesummary(self, method, query, headers, body):
        self._require_token(query)
        days = self._span(body, 1, "getarticlesummary")
        rows = []
        with self._lock:
            for day in days:
                for art in sorted(self._s.articles.values(), key=lambda a: a["seq"]):
                    c = self._article_counts(art, day)
                    if not c or c["int_page_read_count"] + c["share_count"] + c["add_to_fav_count"] < 3:
                        continue
                    rows.append(
                        {
                            "ref_date": day.isoformat(),
                            "msgid": f"{art['msg_data_id']}_1",
                            "title": art["news_item"][0]["title"],
                        }
                        | c
                    )
        return {"list": rows}

    def r_articletotal(self, method, query, headers, body):
        self._require_token(query)
        days = self._span(body, 1, "getarticletotal")
        yesterday = datetime.now(BEIJING).date() - timedelta(days=1)
        rows = []
        with self._lock:
            for day in days:
                for art in sorted(self._s.articles.values(), key=lambda a: a["seq"]):
                    if datetime.fromtimestamp(art["publish_time"], BEIJING).date() != day:
                        continue
                    details, acc = [], dict.fromkeys(self._article_counts(art, day), 0)
                    for i in range(7):
                        stat = day + timedelta(days=i)
                        if stat > yesterday:
                            break
                        for k, v in self._article_counts(art, stat).items():
                            acc[k] += v
                        details.append({"stat_date": stat.isoformat(), "target_user": 1000} | acc)
                    rows.append(
                        {
                            "ref_date": day.isoformat(),
                            "msgid": f"{art['msg_data_id']}_1",
                            "title": art["news_item"][0]["title"],
                            "details": details,
                        }
                    )
        return {"list": rows}

    def _followers(self, day: date) -> tuple[int, int, int]:
        seed = int(hashlib.sha256(f"{self.appid}:{day}".encode()).hexdigest()[:8], 16)
        new, cancel = 20 + seed % 60, seed % 9
        cumulate = 12000 + (day.toordinal() - 738000) * 35
        return new, cancel, cumulate

    def r_usersummary(self, method, query, headers, body):
        self._require_token(query)
        rows = []
        for day in self._span(body, 7, "getusersummary"):
            new, cancel, _ = self._followers(day)
            rows.append({"ref_date": day.isoformat(), "user_source": 0, "new_user": new, "cancel_user": cancel})
        return {"list": rows}

    def r_usercumulate(self, method, query, headers, body):
        self._require_token(query)
        return {
            "list": [
                {"ref_date": d.isoformat(), "user_source": 0, "cumulate_user": self._followers(d)[2]}
                for d in self._span(body, 7, "getusercumulate")
            ]
        }
