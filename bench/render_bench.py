"""How long rendering a large Markdown body takes, and a whole save of one through the web form.

    python bench/render_bench.py [SIZE_MB]     # default 1.4

markdown-it-py is pure Python: its time grows linearly with the body (~3 s a megabyte of table rows
on the shared 2-core machine), so what matters is how many times a save renders (once, see
publisher.pipeline.content._rendered) and that the live preview renders a bounded part.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def table(size: int) -> str:
    body = "## 拟聘用人员名单\n\n| 序号 | 姓名 | 岗位 | 学历 |\n|---|---|---|---|\n"
    rows, n, i = [], len(body.encode()), 0
    while n < size:
        i += 1
        rows.append(f"| {i} | 张三{i} | 专任教师（{i % 40}号岗） | 博士研究生 |\n")
        n += len(rows[-1].encode())
    return body + "".join(rows)


def main() -> None:
    from fastapi.testclient import TestClient
    from markdown_it import MarkdownIt

    from publisher import accounts
    from publisher.app import open_app
    from publisher.db import make_engine, migrate
    from publisher.pipeline import content, workflow
    from publisher.settings import Settings
    from publisher.web import create_app
    from publisher.web.security import SESSION_COOKIE

    size = int(float(sys.argv[1] if len(sys.argv) > 1 else "1.4") * 1_000_000)
    body = table(size)
    t = time.perf_counter()
    content._markdown().render(body)
    print(f"markdown-it alone, {len(body.encode()) / 1e6:.2f} MB: {time.perf_counter() - t:.2f} s")
    renders = [0]
    real = MarkdownIt.render

    def counting(self, src, env=None):  # type: ignore[no-untyped-def]
        renders[0] += 1
        return real(self, src, env)

    MarkdownIt.render = counting  # type: ignore[method-assign]
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'queue.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    app = open_app(Settings(database_url=url, data_dir=str(tmp), channels={"mem": {"type": "memory"}}))
    with app.session() as s:
        workflow.add_department(s, "校长办公室")
        workflow.add_user(s, name="ed", role="editor", department="校长办公室")
        token = accounts.start_session(s, workflow.get_user(s, "ed"), app.settings.web)
    with app.session() as s:
        csrf = accounts.session_caller(s, token).csrf
    form = {
        "csrf_token": csrf,
        "title": "拟聘用人员公示",
        "body_markdown": body,
        "category": "公告公示",
        "department": "校长办公室",
        "channels": "mem",
        "when": "none",
        "action": "submit",
    }
    with TestClient(create_app(app), follow_redirects=False) as client:
        client.cookies.set(SESSION_COOKIE, token)
        for what, path in (("preview", "/preview"), ("save and submit", "/items/new")):
            renders[0] = 0
            t = time.perf_counter()
            r = client.post(path, data=form)
            print(f"{what}: HTTP {r.status_code} in {time.perf_counter() - t:.2f} s, {renders[0]} render(s)")
    app.close()


if __name__ == "__main__":
    main()
