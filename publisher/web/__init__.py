"""``publisher serve``: one process serving the web workspace, the JSON API and the generated site.

``create_app(app)`` builds the FastAPI application around an opened :class:`publisher.app.App`
(tests run it under uvicorn on port 0 or with starlette's TestClient); ``serve`` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from publisher.accounts import TooManyAttempts
from publisher.errors import ConfigError, InvalidInput, NotAllowed, NotFound, PublisherError, StorageFull
from publisher.objectstore import FolderStore, ObjectStore, ObjectStoreError

if TYPE_CHECKING:
    from publisher.app import App

API_DESCRIPTION = (
    "The publisher's JSON API. Authenticate with `Authorization: Bearer <token>` (create a token on "
    "/tokens) or a browser session plus its `X-CSRF-Token` header. `POST /api/items` honours an "
    "`Idempotency-Key` header. Permissions are the same as in the web pages."
)


def site_folder(app: App) -> Path:
    """The website channel's output folder, found by what the channel offers, never by its type name."""
    for spec in app.channels.values():
        folder = getattr(spec.channel, "site_folder", None)
        if folder:
            return Path(folder)
    for spec in app.channels.values():
        folder = getattr(spec.channel.config, "folder", None)
        if folder:
            return app.settings.path(folder)
    return app.settings.path("site")


def site_objects(app: App) -> ObjectStore | None:
    """The bucket a website channel writes its site to (``storage = "s3"``), found by what the channel
    offers; None when the site is a folder (or there is no site)."""
    for spec in app.channels.values():
        files = getattr(spec.channel, "site_objects", None)
        if files is not None and not isinstance(files, FolderStore):
            return files
    return None


def _status(exc: PublisherError) -> int:
    if isinstance(exc, NotAllowed):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, TooManyAttempts):
        return 429
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, StorageFull):
        return 507  # the server's disk, not the request
    if isinstance(exc, ConfigError):
        return 503  # the server's settings (a channel's secret not set): the message names what to set
    return 500


#: the Swagger UI page, everything from this server: no CDN, no inline script (see DOCS_CSP)
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>publisher API</title>
<link rel="icon" type="image/png" href="/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi="/api/openapi.json"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-ui/init.js"></script></body></html>
"""


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic's errors as the OpenAPI document's ValidationError: loc, msg, type and the input if it is
    JSON (a body that is not JSON arrives as bytes, which would otherwise fail the answer with a 500)."""
    out = []
    for e in errors:
        one = {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        value = e.get("input")
        if isinstance(value, bytes):
            value = value[:1000].decode("utf-8", "replace")
        try:
            one["input"] = jsonable_encoder(value)
            json.dumps(one["input"])
        except (TypeError, ValueError):
            one.pop("input", None)
        out.append(one)
    return out


def openapi_document(web: FastAPI) -> dict[str, Any]:
    """FastAPI's document (the bearer scheme comes from the API router's ``logged_in``), with a 422 whose
    ``detail`` is a message (the service's own checks) or pydantic's list (the request's shape)."""
    if web.openapi_schema:
        return web.openapi_schema
    doc = get_openapi(title=web.title, version=web.version, description=web.description, routes=web.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"]["properties"]["detail"] = {
            "title": "Detail",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
        }
    web.openapi_schema = doc
    return doc


class _SiteFiles(StaticFiles):
    """The website channel's folder; before its first publication there is none (404, not starlette's 500).

    The channel's own files there (``.site.sqlite3`` and its journal, ``.lock``, a migrated
    ``_manifest.json``) are not pages: any path with a part starting with ``.`` or ``_`` is answered 404,
    as a web server in front of the folder should (docs/channels/website.md).
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not Path(str(self.directory)).is_dir():
            await PlainTextResponse("nothing published on the website yet", status_code=404)(scope, receive, send)
            return
        parts = [p for p in str(scope.get("path", "")).split("/") if p]
        if _refused(parts):
            await PlainTextResponse("not a page of the site", status_code=404)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _refused(parts: list[str]) -> bool:
    """A path part that is no page of the site: the channel's own files (``.``, ``_``), a step up."""
    return any(p.startswith((".", "_", "%2e", "%2E", "%5f", "%5F")) or "\\" in p or "\x00" in p for p in parts)


class _BucketSite:
    """The site of a website channel in a bucket, served at ``/site/`` as the folder is: GET and HEAD,
    ``…/`` is its ``index.html``, 404 for a missing object and for any path with a part starting with
    ``.`` or ``_`` (or a step up), the type the object was stored with, its ETag and Last-Modified, and
    a conditional GET (If-None-Match) answered 304 by the bucket itself. ``Cache-Control: no-cache``: a
    browser may keep a page but asks again each time, so a withdrawn page is gone at the next look."""

    def __init__(self, files: ObjectStore) -> None:
        self.files = files

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from datetime import UTC
        from email.utils import format_datetime

        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await PlainTextResponse("method not allowed", status_code=405, headers={"Allow": "GET, HEAD"})(
                scope, receive, send
            )
            return
        # under a Mount the path is whole and root_path names the mount (starlette ≥ 0.33)
        path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
        rel = path[len(root) :] if root and path.startswith(root) else path
        parts = [p for p in rel.split("/") if p]
        if _refused(parts) or ".." in parts:
            await PlainTextResponse("not a page of the site", status_code=404)(scope, receive, send)
            return
        key = "/".join(parts)
        if not key or rel.endswith("/"):
            key = f"{key}/index.html" if key else "index.html"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            got = await run_in_threadpool(self.files.fetch, key, if_none_match=headers.get("if-none-match"))
        except ObjectStoreError as exc:
            status = 503 if exc.transient else 502
            await PlainTextResponse(f"the site's bucket did not answer: {exc.code}", status_code=status)(
                scope, receive, send
            )
            return
        if got is None:
            await PlainTextResponse("no such page on the site", status_code=404)(scope, receive, send)
            return
        out = {"cache-control": "no-cache"}
        if got.etag:
            out["etag"] = got.etag
        if got.last_modified is not None:
            out["last-modified"] = format_datetime(got.last_modified.astimezone(UTC), usegmt=True)
        if got.not_modified:
            await Response(status_code=304, headers=out)(scope, receive, send)
            return
        body = b"" if scope["method"] == "HEAD" else got.data
        r = Response(body, headers=out, media_type=got.content_type)
        r.headers["content-length"] = str(len(got.data))
        await r(scope, receive, send)


def create_app(app: App) -> FastAPI:
    from publisher.web import api, pages
    from publisher.web.common import render
    from publisher.web.security import Guard, LoginRequired, optional_caller

    # /api/docs is served below from the package's own Swagger UI (no CDN)
    web = FastAPI(
        title="publisher",
        description=API_DESCRIPTION,
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    web.state.app = app
    # the largest thing anyone sends is one image; anything bigger is refused before it is read
    # the log-out form of a CAS (OIDC) session ends at the CAS server's /logout (the provider's
    # end_session_endpoint, on the issuer's host): a redirect CSP's form-action checks
    cas, oidc = app.settings.auth.cas, app.settings.auth.oidc
    form_targets = tuple(
        urlsplit(url)._replace(path="", query="").geturl()
        for url in (cas.server_url if cas else None, oidc.issuer if oidc else None)
        if url
    )
    web.add_middleware(Guard, max_body=app.settings.review.max_asset_bytes + 256 * 1024, form_targets=form_targets)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path in ("/upload",)

    def page_error(request: Request, status: int, message: str, exc: PublisherError | None = None) -> Response:
        if wants_json(request):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        try:
            caller = optional_caller(request)
        except HTTPException:
            caller = None
        if status != 404:  # the common validation messages (and refusals) in Chinese, the English beside
            from publisher.web.common import translator

            message = translator(request).error(exc if exc is not None else message)
        return render(request, "error.html", caller, code=status, message=message, status=status)

    @web.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if wants_json(request) or request.method != "GET":
            return JSONResponse(
                {"detail": "log in first, or send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return pages.login_redirect(request)

    @web.exception_handler(PublisherError)
    async def _publisher_error(request: Request, exc: PublisherError) -> Response:
        return page_error(request, _status(exc), str(exc), exc)

    @web.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        r = page_error(request, exc.status_code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            r.headers[k] = v
        return r

    @web.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_json(request):
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            not_json = kind and kind != "application/json" and not kind.endswith("+json")
            if not_json and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
                message = f"send the body as JSON (Content-Type: application/json), not {kind[:100]}"
                return JSONResponse({"detail": message}, status_code=415)
            return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)
        return page_error(request, 422, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @web.get("/api/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    @web.api_route("/channels/{name}/callback", methods=["GET", "POST"], include_in_schema=False)
    async def channel_callback(name: str, request: Request) -> Response:
        """No log-in here: the channel checks the remote service's signature itself."""
        spec = app.channels.get(name)
        if spec is None:
            return Response("no such channel", status_code=404, media_type="text/plain")
        body = await request.body()
        reply = await run_in_threadpool(
            spec.channel.handle_callback, request.method, dict(request.query_params), dict(request.headers), body
        )
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

    web.openapi = lambda: openapi_document(web)  # type: ignore[method-assign]
    web.include_router(api.router)
    web.include_router(pages.router)
    web.mount("/static", StaticFiles(directory=str(files("publisher.web").joinpath("static"))), name="static")
    bucket = site_objects(app)
    if bucket is not None:
        web.mount("/site", _BucketSite(bucket), name="site")
    else:
        web.mount("/site", _SiteFiles(directory=str(site_folder(app)), html=True, check_dir=False), name="site")
    return web


def proxy_options(app: App) -> dict[str, Any]:
    """uvicorn's options for a reverse proxy: its X-Forwarded-For names the client (the log-in throttle's
    and the public form's address) only when the proxy is listed in ``[web] forwarded_allow_ips``."""
    trusted = app.settings.web.forwarded_allow_ips
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": list(trusted) or None}


def serve(app: App, *, host: str, port: int) -> None:
    import uvicorn

    # with --port 0 the system picks the port; uvicorn's "running on" line below names it
    where = f"http://{host}:{port}/" if port else f"http://{host} (port picked by the system: see below)"
    print(f"publisher on {where}  (the site under /site/, API docs at /api/docs; Ctrl-C stops)")
    uvicorn.run(create_app(app), host=host, port=port, log_level="info", **proxy_options(app))
