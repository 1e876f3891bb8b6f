"""The pages of the site: the stylesheet, the Jinja2 templates (autoescaped), the body sanitiser and small formatters.

Only the post body is HTML; it was sanitised by the core and is sanitised again here with nh3 as
defence in depth. Everything else goes through Jinja2's autoescape.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import nh3
from markupsafe import Markup, escape

#: the categories of the disclosure checklist (../shared/domain/checklist.toml) in its order; the
#: directory lists them first, then any others by name, and 其他 (other) last
_CATEGORY_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "基本信息",
            "招生考试信息",
            "财务、资产及收费信息",
            "人事师资信息",
            "教学质量信息",
            "学生管理服务信息",
            "学风建设信息",
            "学位、学科信息",
            "对外交流与合作信息",
        )
    )
}


def category_key(name: str) -> tuple[int, str]:
    return (1000 if name == "其他" else _CATEGORY_ORDER.get(name, 100), name)


@functools.lru_cache(maxsize=1024)
def category_slug(name: str) -> str:
    """A stable ASCII file name for a (Chinese) category name (cached: every change names every
    listing's landing page in sitemap-lists.xml)."""
    return "c" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def rfc3339(dt: datetime) -> str:
    """``dt`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ``: what ``strftime("%Y-%m-%dT%H:%M:%SZ")`` gives (for
    years from 1000), built by ``isoformat``, which costs a tenth of ``strftime`` (a change writes a
    sitemap line for every listing)."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def day(dt: datetime) -> str:
    """``dt``'s own date as ``YYYY-MM-DD``: what ``strftime("%Y-%m-%d")`` gives (for years from
    1000), by ``isoformat``, a tenth of its cost; a listing page shows 50 dates, each new to it when
    a withdrawal rewrites a page from the middle of the site (docs/benchmarks.md §12)."""
    return dt.date().isoformat()


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


# ------------------------------------------------------------------------------------------ sanitiser
CLEANER = nh3.Cleaner(
    attributes={
        **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
        "a": {"href", "hreflang", "title", "download"},
        "img": {"alt", "src", "width", "height", "title"},
        "code": {"class"},
        "th": {"align", "colspan", "rowspan", "scope"},
        "td": {"align", "colspan", "rowspan"},
    },
    url_schemes={"http", "https", "mailto"},
)


# ----------------------------------------------------------------------------------------- templates
CSS = """\
:root{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--accent:#9b1c1c;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}
html{font-size:16px}html.large-text{font-size:20px}
body{margin:0;color:var(--fg);background:var(--bg);line-height:1.75;
font-family:"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
"Source Han Sans SC",sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.wrap{max-width:960px;margin:0 auto;padding:0 1rem}
header.site{background:var(--accent);color:#fff}
header.site .wrap{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;
padding:.8rem 1rem}
header.site a{color:#fff}.brand{font-size:1.35rem;font-weight:600;letter-spacing:.05em}
header.site nav a{margin-left:1.2rem}
main{padding:1.5rem 1rem 3rem}main:focus{outline:none}
.skip{position:absolute;left:-999rem;top:.4rem;z-index:10;background:#fff;color:var(--accent);
padding:.4rem .8rem;border:2px solid var(--accent)}.skip:focus{left:.6rem}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
header.site :focus-visible{outline-color:#ffd166}
button.textsize{font:inherit;font-size:.9rem;margin-left:1.2rem;padding:.1rem .6rem;cursor:pointer;
color:#fff;background:transparent;border:1px solid #fff;border-radius:4px}
.crumbs{font-size:.9rem;color:var(--muted);margin-bottom:1rem}.crumbs a{color:var(--muted)}
h1{font-size:1.6rem;line-height:1.4;margin:.2rem 0 1rem}
h2{font-size:1.2rem;border-left:4px solid var(--accent);padding-left:.6rem;margin:2rem 0 .8rem}
.meta{display:flex;flex-wrap:wrap;gap:.3rem 1.5rem;margin:0 0 1.5rem;padding:.7rem 1rem;
background:var(--soft);border:1px solid var(--line);border-radius:4px;font-size:.9rem;color:var(--muted)}
.meta dt{display:inline;font-weight:600}.meta dd{display:inline;margin:0}
article.body{font-size:1.05rem}
article.body img{max-width:100%;height:auto;display:block;margin:1rem auto}
figure.cover{margin:0 0 1.5rem}figure.cover img{max-width:100%;height:auto;display:block;margin:0 auto}
article.body table{border-collapse:collapse;width:100%;margin:1rem 0}
article.body th,article.body td{border:1px solid var(--line);padding:.4rem .6rem}
article.body th{background:var(--soft)}
article.body pre{background:var(--soft);padding:.8rem;overflow:auto}
article.body blockquote{margin:1rem 0;padding:0 1rem;border-left:4px solid var(--line);color:var(--muted)}
ul.items{list-style:none;margin:0;padding:0}
ul.items li{display:flex;justify-content:space-between;gap:1rem;padding:.55rem 0;
border-bottom:1px dashed var(--line)}
ul.items .when{flex:none;color:var(--muted);font-size:.9rem;white-space:nowrap}
ul.items .dept{color:var(--muted);font-size:.85rem;margin-left:.5rem}
ul.dir{columns:2;padding-left:1.2rem}ul.dir li{break-inside:avoid}
.count{color:var(--muted);font-size:.85rem}
.attachments li{margin:.3rem 0}
.empty{color:var(--muted)}
/* links inside running text are underlined: colour alone does not tell them apart (WCAG 1.4.1) */
.prose a{text-decoration:underline}
.pager,.more{margin:1.2rem 0;display:flex;gap:1.2rem}
table.catalogue{width:100%;border-collapse:collapse;margin:0 0 1rem;font-size:.9rem}
table.catalogue caption{text-align:left;font-weight:600;padding:.3rem 0}
table.catalogue th,table.catalogue td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left}
table.catalogue th{background:var(--soft);white-space:nowrap;width:7em}
.repealed{color:var(--accent)}
.ended{padding:.8rem 1rem;border:1px solid var(--line);border-left:4px solid var(--accent);background:var(--soft)}
footer{border-top:1px solid var(--line);color:var(--muted);font-size:.85rem;padding:1rem 0 2rem;
text-align:center}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
form.search{display:flex;gap:.4rem;margin:.5rem 0 0;flex:1 1 100%}
form.search input{font:inherit;flex:1 1 12rem;min-width:0;padding:.3rem .6rem;border:1px solid var(--line);
border-radius:4px}
form.search button{font:inherit;padding:.3rem .9rem;border:1px solid #fff;border-radius:4px;cursor:pointer;
color:#fff;background:transparent}
main form.search button{color:var(--accent);border-color:var(--accent)}
ol.hits{list-style:none;margin:0;padding:0}ol.hits li{padding:.7rem 0;border-bottom:1px dashed var(--line)}
ol.hits .excerpt{margin:.2rem 0;color:var(--fg)}ol.hits mark{background:#fff3bf;color:inherit}
ol.hits .meta-line{font-size:.85rem;color:var(--muted)}
@media (max-width:600px){ul.dir{columns:1}ul.items li{flex-direction:column;gap:0}}
"""

# 大字模式 (large text, 适老化): a class on <html> remembered in localStorage; loaded without defer in
# <head> so the class is there before the first paint. The same logic as the workspace's textsize.js.
SCRIPT = """\
"use strict";
(function () {
  const KEY = "publisher.large-text", CLS = "large-text", root = document.documentElement;
  const stored = () => { try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; } };
  root.classList.toggle(CLS, stored());
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("large-text");
    if (!button) return;
    button.hidden = false;
    button.setAttribute("aria-pressed", String(root.classList.contains(CLS)));
    button.addEventListener("click", () => {
      const on = root.classList.toggle(CLS);
      button.setAttribute("aria-pressed", String(on));
      try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
    });
  });
})();
"""

TEMPLATES = {
    "base.html": """\
<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; img-src 'self' data: https:; \
style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'">
<title>{% block title %}{{ site_title }}{% endblock %}</title>
{% block head %}{% endblock %}
<link rel="stylesheet" href="{{ root }}style.css">
<script src="{{ root }}textsize.js"></script>
<link rel="alternate" type="application/atom+xml" title="{{ site_title }}" href="{{ root }}feed.xml">
</head>
<body>
<a class="skip" href="#main">跳到主要内容</a>
<header class="site"><div class="wrap">
<a class="brand" href="{{ root }}index.html">{{ site_title }}</a>
<nav><a href="{{ root }}index.html">首页</a><a href="{{ root }}index.html#directory">信息公开目录</a>\
<a href="{{ root }}rules.html">现行有效规章制度库</a><a href="{{ root }}reports.html">年度报告</a>\
<a href="{{ root }}guide.html">信息公开指南</a><a href="{{ root }}feed.xml">订阅</a>\
<button type="button" class="textsize" id="large-text" aria-pressed="false" hidden>大字模式</button></nav>
{% block header_search %}<form class="search" role="search" action="{{ root }}search.html" \
method="get"><label for="site-q" class="sr">搜索本站</label>\
<input id="site-q" name="q" type="search" placeholder="搜索标题、正文、索引号、发文字号" autocomplete="off">\
<button type="submit">搜索</button></form>{% endblock %}
</div></header>
<main class="wrap" id="main" tabindex="-1">
{% block main %}{% endblock %}
</main>
<footer><div class="wrap">{{ site_title }} · 依据《高等学校信息公开办法》公开</div></footer>
</body>
</html>
""",
    "list.html": """\
{% macro item_list(entries, root) -%}
{% if entries %}<ul class="items">
{{ item_rows(entries, root) }}</ul>
{% else %}<p class="empty">暂无公开信息。</p>{% endif %}
{%- endmacro %}
""",
    "item.html": """\
{% extends "base.html" %}
{% block title %}{{ post.title }} - {{ site_title }}{% endblock %}
{% block head %}{% if post.summary %}<meta name="description" content="{{ post.summary }}">{% endif %}
<link rel="canonical" href="{{ url }}">{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › \
<a href="{{ root }}categories/{{ post.category | slug }}.html">{{ post.category }}</a></div>
<div data-search-body>
<h1>{{ post.title }}</h1>
{% set cat = post.catalogue %}
{% if cat.validity == "已废止" %}<p class="ended repealed"><strong>本文件已废止。</strong>\
{% if cat.replaced_by %}现行规定见<a href="{{ root }}items/{{ cat.replaced_by }}.html">替代文件</a>。{% endif %}</p>\
{% elif cat.validity == "已修订" %}<p class="ended"><strong>本文件已修订。</strong>\
{% if cat.replaced_by %}请见<a href="{{ root }}items/{{ cat.replaced_by }}.html">修订后的文件</a>。{% endif %}</p>\
{% endif %}
<table class="catalogue"><caption>信息公开目录</caption><tbody>
<tr><th scope="row">索引号</th><td{{ cat.index_no | searchmeta("index_no") }}>{{ cat.index_no or "" }}</td>\
<th scope="row">发布机构</th><td>{{ post.department }}</td></tr>
<tr><th scope="row">发文字号</th><td{{ cat.doc_number | searchmeta("doc_number") }}>{{ cat.doc_number or "" }}</td>\
<th scope="row">成文日期</th><td>{{ cat.written_on or "" }}</td></tr>
<tr><th scope="row">发布日期</th><td data-search-meta="date">{{ post.publish_at | localdate }}</td>\
<th scope="row">主题分类</th><td>{{ cat.topic or "" }}</td></tr>
<tr><th scope="row">公开方式</th><td>{{ cat.disclosure_mode or "" }}</td>\
<th scope="row">有效性</th><td>{{ cat.validity or "" }}</td></tr>
</tbody></table>
<dl class="meta">
<div><dt>发布机构：</dt><dd>{{ post.department }}</dd></div>
<div><dt>所属类别：</dt><dd><a href="{{ root }}categories/{{ post.category | slug }}.html">\
{{ post.category }}</a></dd></div>
{% if post.checklist_item %}<div><dt>公开事项：</dt><dd>\
<a href="{{ root }}checklist/{{ post.checklist_item }}.html">第{{ post.checklist_item }}项\
{% if post.checklist_name %} {{ post.checklist_name }}{% endif %}</a></dd></div>{% endif %}
<div><dt>发布日期：</dt><dd>\
<time datetime="{{ published_iso }}">{{ post.publish_at | localdate }}</time></dd></div>
{% if updated_differs %}<div><dt>更新日期：</dt><dd><time datetime="{{ updated_iso }}">\
{{ post.updated_at | localdate }}</time></dd></div>{% endif %}
{% if post.display_ends_at %}<div><dt>公示期至：</dt><dd>\
<time datetime="{{ post.display_ends_at | isotime }}">{{ post.display_ends_at | lastday }}</time></dd></div>{% endif %}
</dl>
{% if cover %}<figure class="cover"><img src="{{ root }}{{ cover.path }}" alt="{{ cover.alt }}"></figure>{% endif %}
<article class="body">
{{ body }}
</article>
{% if attachments %}<section class="attachments"><h2>附件</h2><ul>
{% for a in attachments %}<li>\
<a href="{{ root }}{{ a.path }}" download="{{ a.filename }}">{{ a.filename }}</a> \
<span class="count">（{{ a.size }}）</span></li>
{% endfor %}</ul></section>{% endif %}
{{ related }}
</div>
{% endblock %}
""",
    "ended.html": """\
{% extends "base.html" %}
{% block title %}{{ post.title }}（公示期已结束） - {{ site_title }}{% endblock %}
{% block head %}<meta name="robots" content="noindex">{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › {{ post.category }}</div>
<h1>{{ post.title }}</h1>
<p class="ended"><strong>公示期已结束。</strong>本公示内容已按规定撤下。</p>
<dl class="meta">
<div><dt>发布机构：</dt><dd>{{ post.department }}</dd></div>
<div><dt>公示期：</dt><dd><time datetime="{{ start | isotime }}">{{ start | localdate }}</time> 至 \
{% if end %}<time datetime="{{ end | isotime }}">{{ end | lastday }}</time>{% else %}（未定）{% endif %}</dd></div>
</dl>
{% endblock %}
""",
    "index.html": """\
{% extends "base.html" %}{% from "list.html" import item_list %}
{% block main %}
<h2>最新公开</h2>
{{ item_list(latest, root) }}
{% if more %}<p class="more"><a href="{{ root }}{{ more }}">全部公开信息（按页浏览） ›</a></p>{% endif %}
<h2 id="directory">信息公开目录</h2>
{% if categories %}<ul class="dir">
{% for c in categories %}<li><a href="{{ root }}categories/{{ c.slug }}.html">{{ c.name }}</a> \
<span class="count">（{{ c.count }}）</span></li>
{% endfor %}</ul>{% else %}<p class="empty">暂无公开信息。</p>{% endif %}
{% if checklist %}<h2>信息公开事项清单</h2><ul class="dir">
{% for c in checklist %}<li>\
<a href="{{ root }}checklist/{{ c.number }}.html">第{{ c.number }}项 {{ c.name }}</a> \
<span class="count">（{{ c.count }}）</span></li>
{% endfor %}</ul>{% endif %}
{% endblock %}
""",
    "listing.html": """\
{% extends "base.html" %}{% from "list.html" import item_list %}
{% block title %}{{ heading }} - {{ site_title }}{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › {{ kind }}</div>
<h1>{{ heading }}</h1>
{{ item_list(entries, root) }}
{% endblock %}
""",
}


def item_rows(localdate: Callable[[datetime | str], str]) -> Callable[[list[dict[str, Any]], str], Markup]:
    """The ``<li>`` rows of a listing (``list.html``), built in Python rather than a template loop:
    a change rewrites up to four full listings (its three and the home page), and this is the part
    of their cost that grows with a full page (docs/benchmarks.md §12)."""

    @functools.lru_cache(maxsize=4096)
    def row(root: str, path: str, title: str, repealed: bool, department: str, published_at: str) -> str:
        mark = '<span class="repealed">（已废止）</span>' if repealed else ""
        return (
            f'<li><span><a href="{escape(root + path)}">{escape(title)}</a>{mark}'
            f'<span class="dept">{escape(department)}</span></span>'
            f'<time class="when" datetime="{escape(published_at)}">{escape(localdate(published_at))}</time></li>\n'
        )

    def rows(entries: list[dict[str, Any]], root: str) -> Markup:
        return Markup(
            "".join(
                row(
                    root,
                    e["path"],
                    e["title"],
                    e.get("validity") == "已废止",
                    e.get("department") or "",
                    e["published_at"],
                )
                for e in entries
            )
        )

    return rows


def search_meta(value: str | None, key: str) -> Markup:
    """The attribute that makes a cell's text a field of the page's search record
    (channels/website/searchindex.py), on a cell that has text: 索引号 and 发文字号 come back with each hit."""
    return Markup(f' data-search-meta="{key}"') if value else Markup("")


def make_jinja(localdate: Callable[[datetime | str], str]) -> jinja2.Environment:
    """The template environment; ``localdate`` shows a time as a date in the office's time zone."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["localdate"] = localdate
    # a period that ends at 24:00 (00:00 of the next day) is shown by its last day
    env.filters["lastday"] = lambda end: localdate(end - timedelta(microseconds=1))
    env.filters["isotime"] = iso
    env.filters["slug"] = category_slug
    env.globals["item_rows"] = item_rows(localdate)
    env.filters["searchmeta"] = search_meta
    return env
