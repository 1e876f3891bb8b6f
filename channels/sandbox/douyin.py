"""A Douyin open-platform sandbox (open.douyin.com): image upload, image post, list, delete, user info.

Follows the endpoints the Douyin channel uses, as the open platform documents them (scope
``video.create``; ``open_id`` and ``access_token`` as query parameters):

* ``POST /image/upload/`` multipart ``image`` → ``{"data": {"image": {"image_id", "width", "height"},
  "error_code": 0, "description": ""}}``; JPEG or PNG only;
* ``POST /image/create/`` JSON ``{"image_id", "text"}`` → ``{"data": {"item_id", "error_code": 0}}``;
* ``GET /video/list/?cursor=&count=`` → ``{"data": {"list": [{"item_id", "title", "create_time",
  "share_url"}], "has_more", "cursor", "error_code": 0}}``;
* ``POST /video/delete/`` JSON ``{"item_id"}``;
* ``POST /oauth/userinfo/`` form ``access_token``, ``open_id`` → the account's nickname.

Errors come as ``{"data": {"error_code", "description"}}`` (HTTP 200), or in the newer gateway shape
``{"err_no", "err_msg"}``: 2100004 system busy, 2100005 bad parameter, 2190002 invalid token,
2190004 app lacks the capability, 2190008 token expired, 2190015 token and open_id mismatch.

Faults (``fail_next``): ``transient`` (2100004 in the gateway shape), ``permanent`` (2190004),
``ambiguous`` (the next ``/image/create/`` does the work, then closes the connection), ``expired`` (2190008).
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

from channels.sandbox._http import DROP, HttpSandbox, Reply, Request, serve_main
from publisher.channel import SandboxHandle

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG")


def dy_error(code: int, description: str) -> Reply:
    return Reply(200, {"data": {"error_code": code, "description": description}, "extra": {"logid": "sandbox"}})


class DouyinSandbox(HttpSandbox):
    fault_kinds = ("transient", "permanent", "ambiguous", "expired")

    def __init__(
        self,
        *,
        access_token: str = "sandbox-douyin-token",
        open_id: str = "sandbox-open-id",
        max_image_bytes: int = 20 * 1024 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_token = access_token
        self.open_id = open_id
        self.max_image_bytes = max_image_bytes
        self.images: dict[str, int] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(7_300_000_000_000_000_001)

    def live_count(self) -> int:
        with self.lock:
            return sum(1 for i in self.items.values() if not i["deleted"])

    def handle(self, req: Request) -> Reply | object:
        m = re.fullmatch(r"/note/(\d+)", req.path)
        if m:
            item = self.items.get(m.group(1))
            ok = item is not None and not item["deleted"]
            return Reply(200 if ok else 404, f"<html><body>{item['title'] if ok else '作品不存在'}</body></html>")
        params = dict(req.query)
        if req.path == "/oauth/userinfo/":
            params.update(req.form())
        if params.get("access_token") != self.access_token:
            return dy_error(2190002, "access_token无效")
        if params.get("open_id") != self.open_id:
            return dy_error(2190015, "请求参数access_token openid不匹配")
        if req.path == "/oauth/userinfo/":
            return Reply(
                200,
                {
                    "data": {
                        "open_id": self.open_id,
                        "union_id": "",
                        "nickname": "示范大学",
                        "avatar": "",
                        "error_code": 0,
                        "description": "",
                    }
                },
            )
        if req.path == "/video/list/" and req.method == "GET":
            live = sorted((i for i in self.items.values() if not i["deleted"]), key=lambda i: -i["create_time"])
            count = int(params.get("count", 10))
            return Reply(
                200,
                {
                    "data": {
                        "list": [self._item_json(i) for i in live[:count]],
                        "has_more": len(live) > count,
                        "cursor": 0,
                        "error_code": 0,
                        "description": "",
                    }
                },
            )
        if req.method != "POST":
            return dy_error(2100005, "参数不合法")
        fault = self.take_fault()
        if fault == "ambiguous" and req.path != "/image/create/":
            self._faults.appendleft(fault)  # a lost answer only matters on the call that publishes
            fault = None
        if fault == "transient":
            return Reply(200, {"err_no": 2100004, "err_msg": "系统繁忙，此时请开发者稍候再试", "log_id": "sandbox"})
        if fault == "permanent":
            return dy_error(2190004, "应用未获得该能力, 请去https://open.douyin.com/申请")
        if fault == "expired":
            return dy_error(2190008, "access_token过期,请刷新或重新授权")
        if req.path == "/image/upload/":
            reply = self._upload(req)
        elif req.path == "/image/create/":
            reply = self._create(req)
        elif req.path == "/video/delete/":
            reply = self._delete(req)
        else:
            return Reply(404, {"err_no": 404, "err_msg": "not found"})
        return DROP if fault == "ambiguous" else reply

    def _upload(self, req: Request) -> Reply:
        image = req.files().get("image")
        if image is None or not image[1].startswith(IMAGE_MAGIC):
            return dy_error(2100005, "参数不合法: image 需为 jpg/png")
        if len(image[1]) > self.max_image_bytes:
            return dy_error(2100005, "参数不合法: 图片过大")
        image_id = f"@sandbox-img-{len(self.images) + 1}"
        self.images[image_id] = len(image[1])
        self.record("upload", image_id=image_id, size=len(image[1]))
        return Reply(
            200,
            {
                "data": {
                    "image": {"image_id": image_id, "width": 1080, "height": 1440},
                    "error_code": 0,
                    "description": "",
                }
            },
        )

    def _create(self, req: Request) -> Reply:
        body = req.json()
        if body.get("image_id") not in self.images:
            return dy_error(2100005, "参数不合法: image_id 无效")
        item_id = str(next(self._ids))
        self.items[item_id] = {
            "item_id": item_id,
            "title": body.get("text", ""),
            "image_id": body["image_id"],
            "create_time": int(time.time()),
            "deleted": False,
        }
        self.record("create", item_id=item_id, text=body.get("text", ""))
        return Reply(200, {"data": {"item_id": item_id, "error_code": 0, "description": ""}})

    def _delete(self, req: Request) -> Reply:
        item = self.items.get(str(req.json().get("item_id", "")))
        if item is None or item["deleted"]:
            return dy_error(2100005, "参数不合法: item_id 不存在")
        item["deleted"] = True
        self.record("delete", item_id=item["item_id"])
        return Reply(200, {"data": {"error_code": 0, "description": ""}})

    def _item_json(self, i: dict[str, Any]) -> dict[str, Any]:
        return {
            "item_id": i["item_id"],
            "title": i["title"],
            "create_time": i["create_time"],
            "share_url": f"{self.base_url}/note/{i['item_id']}",
            "is_reviewed": True,
            "media_type": 2,
        }


def main() -> None:
    def add_args(p):
        p.add_argument("--access-token", default="sandbox-douyin-token")
        p.add_argument("--open-id", default="sandbox-open-id")

    serve_main(
        lambda a: DouyinSandbox(access_token=a.access_token, open_id=a.open_id, host=a.host, port=a.port),
        add_args,
        "Douyin open platform sandbox",
    )


if __name__ == "__main__":
    main()


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running Douyin open platform and the douyin table for it."""
    sandbox = DouyinSandbox(access_token="demo-douyin-token", open_id="demo-open-id")
    base = sandbox.start()
    return SandboxHandle(
        config={
            "type": "douyin",
            "api_base": base,
            "access_token_env": "PUBLISHER_DEMO_DOUYIN_TOKEN",
            "open_id_env": "PUBLISHER_DEMO_DOUYIN_OPEN_ID",
            "note_url_template": base + "/note/{item_id}",
        },
        environ={
            "PUBLISHER_DEMO_DOUYIN_TOKEN": "demo-douyin-token",
            "PUBLISHER_DEMO_DOUYIN_OPEN_ID": "demo-open-id",
        },
        stop=sandbox.stop,
        describe=f"a Douyin open-platform API at {base}",
    )
