"""The item's HTML rewritten into what the WeChat article reader shows well.

WeChat keeps only inline ``style`` (no ``<style>``, no classes), drops scripts, and turns links to
anywhere but its own articles into dead text. So: every element gets an inline style, anything that
runs code is dropped, external links become numbered notes listed under the article (the reader can
copy them), and links to intranet hosts are refused at review time — a public account must not point
readers at ``http://oa.local/`` or ``10.0.0.5``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

_BASE = "margin:0 0 1em;line-height:1.75;font-size:16px;color:#333;"
STYLES: dict[str, str] = {
    "p": _BASE + "text-align:justify;",
    "h1": "margin:1.2em 0 .6em;font-size:22px;font-weight:bold;line-height:1.4;color:#1a1a1a;",
    "h2": "margin:1.2em 0 .6em;font-size:20px;font-weight:bold;line-height:1.4;color:#1a1a1a;"
    "border-left:4px solid #a31f24;padding-left:8px;",
    "h3": "margin:1em 0 .5em;font-size:18px;font-weight:bold;line-height:1.4;color:#1a1a1a;",
    "h4": "margin:1em 0 .5em;font-size:16px;font-weight:bold;color:#1a1a1a;",
    "h5": "margin:1em 0 .5em;font-size:16px;font-weight:bold;color:#555;",
    "h6": "margin:1em 0 .5em;font-size:15px;font-weight:bold;color:#777;",
    "ul": "margin:0 0 1em;padding-left:1.6em;list-style-type:disc;",
    "ol": "margin:0 0 1em;padding-left:1.6em;list-style-type:decimal;",
    "li": "margin:0 0 .4em;line-height:1.75;font-size:16px;color:#333;",
    "blockquote": "margin:0 0 1em;padding:.6em 1em;border-left:4px solid #d0d0d0;background:#f7f7f7;color:#555;",
    "table": "width:100%;margin:0 0 1em;border-collapse:collapse;font-size:14px;",
    "th": "border:1px solid #ccc;padding:6px 8px;background:#f2f2f2;font-weight:bold;text-align:left;",
    "td": "border:1px solid #ccc;padding:6px 8px;vertical-align:top;",
    "pre": "margin:0 0 1em;padding:.8em;background:#f6f8fa;font-size:13px;line-height:1.5;"
    "white-space:pre-wrap;word-break:break-all;overflow-x:auto;",
    "code": "font-family:Menlo,Consolas,monospace;font-size:90%;background:#f6f8fa;padding:0 3px;",
    "img": "display:block;max-width:100%;height:auto;margin:0 auto 1em;",
    "hr": "border:0;border-top:1px solid #e0e0e0;margin:1.5em 0;",
    "strong": "font-weight:bold;",
    "b": "font-weight:bold;",
    "em": "font-style:italic;",
    "i": "font-style:italic;",
    "a": "color:#576b95;text-decoration:none;",
    "sup": "font-size:12px;color:#576b95;",
    "figcaption": "text-align:center;font-size:14px;color:#888;margin:0 0 1em;",
}
_KEEP = set(STYLES) | {
    "thead",
    "tbody",
    "tr",
    "br",
    "span",
    "section",
    "figure",
    "del",
    "s",
    "u",
    "sub",
    "caption",
    "div",
}
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "form",
    "noscript",
    "template",
    "svg",
    "math",
    "video",
    "audio",
    "canvas",
    "button",
    "input",
    "select",
    "textarea",
}
_VOID = {"br", "hr", "img"}
_BLOCK = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "td",
    "th",
    "tr",
    "blockquote",
    "pre",
    "div",
    "section",
    "figure",
    "figcaption",
    "br",
    "hr",
    "table",
    "caption",
}
_COMPACT_P = "margin:0 0 .3em;line-height:1.75;"
#: hosts whose links stay clickable inside the WeChat reader
WECHAT_LINK_HOSTS = ("mp.weixin.qq.com",)
_INTRANET_SUFFIXES = (
    ".local",
    ".lan",
    ".internal",
    ".intranet",
    ".corp",
    ".home",
    ".home.arpa",
    ".localdomain",
    ".test",
    ".invalid",
    ".example",
)


def intranet_reason(url: str, intranet_domains: tuple[str, ...] = ()) -> str | None:
    """Why ``url`` points inside the campus network (or nowhere), or None when it is public.

    ``intranet_domains`` adds the school's own internal names (``oa.example.edu.cn``), which public
    DNS may well resolve but readers outside the campus cannot open.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return None if parts.scheme in ("mailto", "tel") else f"uses the {parts.scheme or 'relative'} scheme"
    if not host:
        return "has no host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if not ip.is_global:
            return f"points at the private address {host}"
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"points at {host}"
    if "." not in host:
        return f"points at the intranet host {host!r} (no domain)"
    if host.endswith(_INTRANET_SUFFIXES):
        return f"points at the intranet host {host}"
    for domain in intranet_domains:
        domain = domain.strip(".").lower()
        if domain and (host == domain or host.endswith("." + domain)):
            return f"points at the intranet host {host}"
    return None


@dataclass
class Rendered:
    html: str
    links: list[str] = field(default_factory=list)
    bad_links: list[tuple[str, str]] = field(default_factory=list)
    external_images: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    #: the body as plain text (no notes, no code that was dropped), for the digest
    text: str = ""


class _Rewriter(HTMLParser):
    def __init__(self, intranet_domains: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.intranet_domains = intranet_domains
        self.out: list[str] = []
        self.drop_depth = 0
        self.link_stack: list[str | None] = []
        self.r = Rendered(html="")
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            if tag not in _VOID:
                self.drop_depth += 1
            return
        if self.drop_depth:
            return
        a = {k: (v or "") for k, v in attrs}
        if tag == "a":
            href = a.get("href", "").strip()
            if href.startswith("//"):  # scheme-relative: the reader's WebView would use https
                href = "https:" + href
            scheme = urlsplit(href).scheme.lower() if href else ""
            if href and scheme not in ("", "javascript", "mailto", "tel", "data"):
                reason = intranet_reason(href, self.intranet_domains)
                if reason:
                    self.r.bad_links.append((href, reason))
            host = (urlsplit(href).hostname or "") if href else ""
            if host in WECHAT_LINK_HOSTS:
                self.out.append(f'<a href="{escape(href)}" style="{STYLES["a"]}">')
                self.link_stack.append(None)
            else:
                self.link_stack.append(href if href.startswith(("http://", "https://")) else "")
            return
        if tag == "img":
            src = a.get("src", "").strip()
            if src.startswith("asset://"):
                self.r.images.append(src)
            else:
                self.r.external_images.append(src)
            alt = escape(a.get("alt", ""))
            self.out.append(f'<img src="{escape(src)}" alt="{alt}" style="{STYLES["img"]}">')
            return
        if tag not in _KEEP:
            return
        extra = ""
        if tag in ("td", "th"):
            for k in ("colspan", "rowspan"):
                if a.get(k, "").isdigit():
                    extra += f' {k}="{a[k]}"'
        if tag == "ol" and a.get("start", "").isdigit():
            extra += f' start="{a["start"]}"'
        style = STYLES.get(tag, "")
        if tag == "code" and self.out and self.out[-1].startswith("<pre"):
            style = "font-family:Menlo,Consolas,monospace;"
        elif tag == "p" and self.open and self.open[-1] in ("blockquote", "li", "td", "th"):
            style = _COMPACT_P  # a paragraph inside a quote or a loose list item: no extra gap
        if tag in _BLOCK:
            self.text.append(" ")
        if tag not in _VOID:
            self.open.append(tag)
        self.out.append(f"<{tag}{extra}" + (f' style="{style}"' if style else "") + ">")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and tag != "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self.drop_depth = max(0, self.drop_depth - 1)
            return
        if self.drop_depth or tag in _VOID:
            return
        if tag == "a":
            href = self.link_stack.pop() if self.link_stack else ""
            if href is None:
                self.out.append("</a>")
            elif href:
                if href not in self.r.links:
                    self.r.links.append(href)
                n = self.r.links.index(href) + 1
                self.out.append(f'<sup style="{STYLES["sup"]}">[{n}]</sup>')
            return
        if tag in _KEEP:
            if tag in self.open:
                while self.open and self.open.pop() != tag:
                    pass
            if tag in _BLOCK:
                self.text.append(" ")
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.drop_depth:
            self.out.append(escape(data, quote=False))
            self.text.append(data)


def render(body_html: str, *, notes_title: str = "文中链接", intranet_domains: tuple[str, ...] = ()) -> Rendered:
    """``body_html`` (asset:// images kept) rewritten for the WeChat reader."""
    p = _Rewriter(tuple(intranet_domains))
    p.feed(body_html)
    p.close()
    html = "".join(p.out)
    if p.r.links:
        notes = "".join(
            f'<p style="margin:0 0 .3em;font-size:13px;line-height:1.5;color:#888;word-break:break-all;">'
            f"[{i}] {escape(u)}</p>"
            for i, u in enumerate(p.r.links, start=1)
        )
        html += (
            f'<section style="margin-top:2em;"><p style="margin:0 0 .5em;font-size:14px;color:#888;">'
            f"{escape(notes_title)}</p>{notes}</section>"
        )
    p.r.html = html
    p.r.text = " ".join("".join(p.text).split())
    return p.r


def make_digest(summary: str, body_text: str, limit: int = 128) -> str:
    """The summary, or the body's opening text, cut to ``limit`` characters at a sentence if possible."""
    text = " ".join((summary or "").split()) or " ".join(body_text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    for stop in ("。", "！", "？", "；", ". "):
        i = cut.rfind(stop)
        if i >= limit // 2:
            return cut[: i + 1]
    return cut + "…"
