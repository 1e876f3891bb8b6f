"""A WordPress-shaped REST API (``/wp-json/wp/v2``): posts, media, categories, application passwords.

Follows the WordPress REST API handbook where the CMS channel depends on it:

* authentication is HTTP Basic with a user name and an *application password* (shown by WordPress
  in groups of four separated by spaces; the spaces do not matter);
* errors are ``{"code", "message", "data": {"status"}}`` with the HTTP status repeated, e.g.
  ``rest_not_logged_in`` (401), ``rest_cannot_create`` (401 when anonymous, 403 when not allowed),
  ``incorrect_password`` (401), ``rest_post_invalid_id`` (404), ``term_exists`` (400);
* ``DELETE /posts/<id>`` moves a post to the trash (its slug gains ``__trashed``);
  ``?force=true`` deletes it for good and answers ``{"deleted": true, "previous": {...}}``;
* ``GET /posts`` shows published posts only unless the caller may edit and asks ``status=any``;
* ``POST /media`` takes the raw file with ``Content-Disposition: attachment; filename=...``;
* a post's public page is ``/?p=<id>`` (WordPress's plain permalink).

Faults (``fail_next``, or drawn at ``set_fault_rate``) hit the next non-GET request:

* ``transient`` (busy) answers 503 with an HTML page, as a proxy in front of a saturated PHP pool does;
* ``quota`` answers 429 ``rest_too_many_requests`` with ``Retry-After`` (:attr:`WordPressSandbox.retry_after`
  seconds), as a host's rate limiter in front of WordPress does (core has none);
* ``http500`` answers 500 ``internal_server_error``, WordPress's fatal-error handler's answer to a
  REST request ("There has been a critical error on this website."), without doing the work;
* ``timeout`` does the work and answers only after :attr:`WordPressSandbox.hang_seconds` (longer
  than the client waits: the ambiguous case);
* ``permanent`` answers 403 ``rest_cannot_create``; ``ambiguous`` does the work and closes the
  connection without answering.

Application passwords do not expire, so there is no token fault here (a revoked password is the
``incorrect_password`` 401 of any wrong password).
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channels.sandbox._http import DROP, HttpSandbox, Late, Reply, Request, serve_main
from publisher.channel import SandboxHandle

API = "/wp-json/wp/v2"


def wp_error(status: int, code: str, message: str, **data: Any) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": {"status": status, **data}})


def _slugify(text: str) -> str:
    slug = re.sub(r"[^0-9a-z\u4e00-\u9fff-]+", "-", text.lower()).strip("-")
    return slug or "post"


class WordPressSandbox(HttpSandbox):
    """The WordPress REST API as the CMS channel uses it. One class because it is one service: its
    posts, media, categories and users share the ids, the ledger and the fault switches."""

    fault_kinds = ("transient", "permanent", "ambiguous", "quota", "http500", "timeout")
    #: seconds a ``timeout`` fault holds its answer back
    hang_seconds = 3.0
    #: the Retry-After of a ``quota`` fault
    retry_after = 1

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        capabilities: dict[str, bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        #: user name -> application password (spaces ignored, as WordPress does)
        self.users = {u: p.replace(" ", "") for u, p in (users or {"editor": "abcd efgh ijkl mnop qrst uvwx"}).items()}
        self.capabilities = capabilities or {
            "publish_posts": True,
            "edit_posts": True,
            "upload_files": True,
            "manage_categories": True,
            "delete_posts": True,
        }
        self.posts: dict[int, dict[str, Any]] = {}
        self.media: dict[int, dict[str, Any]] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.categories: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Uncategorized", "slug": "uncategorized"}}
        self._next_id = 100

    # -- test helpers ---------------------------------------------------------------------------------
    def live_count(self) -> int:
        with self.lock:
            return sum(1 for p in self.posts.values() if p["status"] == "publish")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- plumbing ---------------------------------------------------------------------------------------
    def _user(self, req: Request) -> str | None | Reply:
        auth = req.headers.get("authorization", "")
        if not auth:
            return None
        if not auth.startswith("Basic "):
            return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
        try:
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        except ValueError:
            return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
        if user not in self.users:
            return wp_error(401, "invalid_username", "Unknown username. Check again or try your email address.")
        if password.replace(" ", "") != self.users[user]:
            return wp_error(401, "incorrect_password", "The provided password is an invalid application password.")
        return user

    def _post_json(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": p["id"],
            "date_gmt": p["date_gmt"],
            "modified_gmt": p["modified_gmt"],
            "slug": p["slug"],
            "status": p["status"],
            "type": "post",
            "link": f"{self.base_url}/?p={p['id']}",
            "title": {"raw": p["title"], "rendered": p["title"]},
            "content": {"raw": p["content"], "rendered": p["content"], "protected": False},
            "excerpt": {"raw": p["excerpt"], "rendered": p["excerpt"]},
            "categories": p["categories"],
            "featured_media": p["featured_media"],
        }

    def handle(self, req: Request) -> Reply | object:
        if req.path == "/" and "p" in req.query:
            return self._public_page(req.query["p"])
        if req.path.startswith("/wp-content/uploads/"):
            hit = self.files.get(req.path)
            return Reply(200, hit[1], content_type=hit[0]) if hit else Reply(404, "<h1>Not Found</h1>")
        if not req.path.startswith(API):
            return wp_error(404, "rest_no_route", "No route was found matching the URL and request method.")
        user = self._user(req)
        if isinstance(user, Reply):
            return user
        fault = self.take_fault() if req.method != "GET" else None
        if fault == "transient":
            return Reply(503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
        if fault == "permanent":
            return wp_error(403, "rest_cannot_create", "Sorry, you are not allowed to create posts as this user.")
        if fault == "quota":
            reply = wp_error(429, "rest_too_many_requests", "Too many requests. Please slow down.")
            reply.headers["Retry-After"] = str(self.retry_after)
            return reply
        if fault == "http500":
            return wp_error(
                500,
                "internal_server_error",
                "<p>There has been a critical error on this website.</p>"
                '<p><a href="https://wordpress.org/documentation/article/faq-troubleshooting/">'
                "Learn more about troubleshooting WordPress.</a></p>",
            )
        reply = self._route(req, user, req.path[len(API) :])
        if fault == "timeout":
            return Late(reply, self.hang_seconds)
        return DROP if fault == "ambiguous" else reply

    def snapshot(self) -> dict[str, Any]:
        """The ledger and every post (without its content): what a chaos run checks."""
        with self.lock:
            posts = [{k: p[k] for k in ("id", "slug", "status", "title")} for p in self.posts.values()]
        return super().snapshot() | {"posts": posts}

    def _route(self, req: Request, user: str | None, path: str) -> Reply:
        m = re.fullmatch(r"/posts/(\d+)", path)
        if path == "/posts":
            if req.method == "GET":
                return self._list_posts(req, user)
            if req.method == "POST":
                return self._create_post(req, user)
        elif m:
            pid = int(m.group(1))
            if req.method == "GET":
                return self._get_post(pid, user)
            if req.method in ("POST", "PUT", "PATCH"):
                return self._update_post(pid, req, user)
            if req.method == "DELETE":
                return self._delete_post(pid, req, user)
        elif path == "/media" and req.method == "POST":
            return self._upload(req, user)
        elif (media := re.fullmatch(r"/media/(\d+)", path)) and req.method in ("POST", "PUT", "PATCH"):
            return self._update_media(int(media.group(1)), req, user)
        elif path == "/categories":
            if req.method == "GET":
                return self._list_categories(req)
            if req.method == "POST":
                return self._create_category(req, user)
        elif path == "/users/me" and req.method == "GET":
            if user is None:
                return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
            return Reply(200, {"id": 1, "name": user, "slug": user, "capabilities": self.capabilities})
        return wp_error(404, "rest_no_route", "No route was found matching the URL and request method.")

    # -- posts ------------------------------------------------------------------------------------------
    def _list_posts(self, req: Request, user: str | None) -> Reply:
        statuses = {"publish"}
        wanted = req.query.get("status", "publish")
        if wanted != "publish":
            if user is None or not self.capabilities.get("edit_posts"):
                return wp_error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): status",
                    params={"status": "Status is forbidden."},
                )
            statuses = (
                {"publish", "draft", "pending", "private", "future", "trash"}
                if wanted == "any"
                else set(wanted.split(","))
            )
            if wanted == "any":
                statuses.discard("trash")  # WordPress leaves trash out of "any"
        found = [p for p in self.posts.values() if p["status"] in statuses]
        if "slug" in req.query:
            slugs = set(req.query["slug"].split(","))
            found = [p for p in found if p["slug"] in slugs]
        if "after" in req.query:
            found = [p for p in found if p["date_gmt"] > req.query["after"][:19]]
        per_page = int(req.query.get("per_page", 10))
        found.sort(key=lambda p: p["id"], reverse=True)
        return Reply(200, [self._post_json(p) for p in found[:per_page]], headers={"X-WP-Total": str(len(found))})

    def _get_post(self, pid: int, user: str | None) -> Reply:
        p = self.posts.get(pid)
        if p is None or (p["status"] != "publish" and user is None):
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        return Reply(200, self._post_json(p))

    def _check_fields(self, body: dict[str, Any]) -> Reply | None:
        if "status" in body and body["status"] not in ("publish", "draft", "pending", "private", "future"):
            return wp_error(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): status",
                params={"status": "status is not one of publish, future, draft, pending, private."},
            )
        for cid in body.get("categories", []):
            if cid not in self.categories:
                return wp_error(400, "rest_invalid_term_id", "Invalid term ID.")
        fm = body.get("featured_media", 0)
        if fm and fm not in self.media:
            return wp_error(400, "rest_invalid_featured_media", "Invalid featured media ID.")
        return None

    def _create_post(self, req: Request, user: str | None) -> Reply:
        if user is None:
            return wp_error(401, "rest_cannot_create", "Sorry, you are not allowed to create posts as this user.")
        if not self.capabilities.get("edit_posts"):
            return wp_error(403, "rest_cannot_create", "Sorry, you are not allowed to create posts as this user.")
        body = req.json()
        bad = self._check_fields(body)
        if bad:
            return bad
        status = body.get("status", "draft")
        if status == "publish" and not self.capabilities.get("publish_posts"):
            return wp_error(
                403, "rest_cannot_publish", "Sorry, you are not allowed to publish posts in this post type."
            )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        pid = self._new_id()
        slug = body.get("slug") or _slugify(body.get("title", ""))
        taken = {p["slug"] for p in self.posts.values()}
        base, n = slug, 2
        while slug in taken:  # WordPress makes slugs unique by suffixing -2, -3...
            slug, n = f"{base}-{n}", n + 1
        self.posts[pid] = {
            "id": pid,
            "title": body.get("title", ""),
            "content": body.get("content", ""),
            "excerpt": body.get("excerpt", ""),
            "status": status,
            "slug": slug,
            "categories": body.get("categories") or [1],
            "featured_media": body.get("featured_media", 0),
            "date_gmt": now,
            "modified_gmt": now,
            "author": user,
        }
        self.record("create", id=pid, slug=slug, status=status, title=body.get("title", ""))
        return Reply(201, self._post_json(self.posts[pid]))

    def _update_post(self, pid: int, req: Request, user: str | None) -> Reply:
        p = self.posts.get(pid)
        if user is None:
            return wp_error(401, "rest_cannot_edit", "Sorry, you are not allowed to edit this post.")
        if p is None:
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        body = req.json()
        bad = self._check_fields(body)
        if bad:
            return bad
        for key in ("title", "content", "excerpt", "status", "categories", "featured_media"):
            if key in body:
                p[key] = body[key]
        if p["slug"].endswith("__trashed") and p["status"] != "trash":
            p["slug"] = p["slug"][: -len("__trashed")]
        p["modified_gmt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        self.record("update", id=pid, status=p["status"], title=p["title"])
        return Reply(200, self._post_json(p))

    def _delete_post(self, pid: int, req: Request, user: str | None) -> Reply:
        p = self.posts.get(pid)
        if user is None:
            return wp_error(401, "rest_cannot_delete", "Sorry, you are not allowed to delete this post.")
        if p is None:
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        if req.query.get("force") in ("true", "1"):
            del self.posts[pid]
            self.record("delete", id=pid)
            return Reply(200, {"deleted": True, "previous": self._post_json(p)})
        if p["status"] == "trash":
            return wp_error(410, "rest_already_trashed", "The post has already been deleted.")
        p["status"] = "trash"
        p["slug"] += "__trashed"
        self.record("trash", id=pid)
        return Reply(200, self._post_json(p))

    def _public_page(self, pid: str) -> Reply:
        p = self.posts.get(int(pid)) if pid.isdigit() else None
        if p is None or p["status"] != "publish":
            return Reply(404, "<html><body><h1>Page not found</h1></body></html>")
        return Reply(200, f"<html><head><title>{p['title']}</title></head><body>{p['content']}</body></html>")

    # -- media and categories -----------------------------------------------------------------------------
    def _upload(self, req: Request, user: str | None) -> Reply:
        if user is None or not self.capabilities.get("upload_files"):
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_create",
                "Sorry, you are not allowed to upload media on this site.",
            )
        m = re.search(r'filename="?([^";]+)"?', req.headers.get("content-disposition", ""))
        if not m:
            return wp_error(400, "rest_upload_no_content_disposition", "No Content-Disposition supplied.")
        if not req.body:
            return wp_error(400, "rest_upload_no_data", "No data supplied.")
        mid = self._new_id()
        ctype = req.headers.get("content-type", "application/octet-stream")
        path = f"/wp-content/uploads/{mid}-{m.group(1)}"
        self.files[path] = (ctype, req.body)
        self.media[mid] = {
            "id": mid,
            "source_url": self.base_url + path,
            "mime_type": ctype,
            "media_type": "image" if ctype.startswith("image/") else "file",
            "alt_text": "",
        }
        self.record("media", id=mid, filename=m.group(1), size=len(req.body))
        return Reply(201, self.media[mid])

    def _update_media(self, mid: int, req: Request, user: str | None) -> Reply:
        """``POST /media/<id>``: WordPress's "update a media item"; ``alt_text`` is what the tests read."""
        if user is None or not self.capabilities.get("upload_files"):
            return wp_error(
                401 if user is None else 403, "rest_cannot_edit", "Sorry, you are not allowed to edit this post."
            )
        if mid not in self.media:
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        body = req.json()
        if "alt_text" in body:
            if not isinstance(body["alt_text"], str):
                return wp_error(400, "rest_invalid_param", "Invalid parameter(s): alt_text")
            self.media[mid]["alt_text"] = body["alt_text"]
        self.record("media_update", id=mid, alt_text=self.media[mid]["alt_text"])
        return Reply(200, self.media[mid])

    def _list_categories(self, req: Request) -> Reply:
        found = list(self.categories.values())
        if "search" in req.query:
            found = [c for c in found if req.query["search"].lower() in c["name"].lower()]
        return Reply(200, found)

    def _create_category(self, req: Request, user: str | None) -> Reply:
        if user is None or not self.capabilities.get("manage_categories"):
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_create",
                "Sorry, you are not allowed to create terms in this taxonomy.",
            )
        name = req.json().get("name", "").strip()
        if not name:
            return wp_error(400, "rest_missing_callback_param", "Missing parameter(s): name")
        for c in self.categories.values():
            if c["name"] == name:
                return wp_error(
                    400,
                    "term_exists",
                    "A term with the name provided already exists with this parent.",
                    term_id=c["id"],
                )
        cid = self._new_id()
        self.categories[cid] = {"id": cid, "name": name, "slug": _slugify(name)}
        self.record("category", id=cid, name=name)
        return Reply(201, self.categories[cid])


def main() -> None:
    def add_args(p):
        p.add_argument("--user", default="editor")
        p.add_argument("--app-password", default="abcd efgh ijkl mnop qrst uvwx")
        p.add_argument(
            "--hang-seconds",
            type=float,
            default=WordPressSandbox.hang_seconds,
            help="how long a timeout fault holds its answer back",
        )

    def build(a):
        sandbox = WordPressSandbox(users={a.user: a.app_password}, host=a.host, port=a.port)
        sandbox.hang_seconds = a.hang_seconds
        return sandbox

    serve_main(
        build,
        add_args,
        "WordPress REST API sandbox",
    )


if __name__ == "__main__":
    main()


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running WordPress-shaped API and the cms table for it."""
    password = "demo aaaa bbbb cccc dddd eeee"
    sandbox = WordPressSandbox(users={"editor": password})
    base = sandbox.start()
    return SandboxHandle(
        config={
            "type": "cms",
            "base_url": base,
            "username": "editor",
            "password_env": "PUBLISHER_DEMO_CMS_PASSWORD",
            "create_categories": True,
        },
        environ={"PUBLISHER_DEMO_CMS_PASSWORD": password},
        stop=sandbox.stop,
        describe=f"a WordPress-shaped REST API at {base}/wp-json/wp/v2/posts",
    )
