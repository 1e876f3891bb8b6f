"""The search page (search.html) and its script (search.js): the reader's side of the site search.

The script is the site's own file (the CSP allows only 'self'; no WebAssembly, no framework). On
every query it reads ``search/current.json`` (a withdrawal since the page was opened counts), cuts
the query into terms as the build cut the pages (``TERMS_JS``), fetches each term's dictionary
shard (and a frequent term's postings file), intersects the postings, adds the impact bytes, drops
the pages listed as gone, and orders by score, then page number (newest first). A result whose
索引号 or 发文字号 is exactly the query comes first. Only the results shown load their ``doc/<n>.json``.
"""

from __future__ import annotations

from channels.website.searchindex import SHARDS_JS, TERMS_JS

SEARCH_TEMPLATES = {
    "search.html": """\
{% extends "base.html" %}
{% block title %}搜索 - {{ site_title }}{% endblock %}
{% block header_search %}{% endblock %}
{% block head %}<meta name="robots" content="noindex">
<script src="{{ root }}search.js" defer></script>{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › 搜索</div>
<h1>搜索</h1>
<form class="search" id="search-form" role="search" action="search.html" method="get">\
<label for="search-q" class="sr">搜索关键词</label>\
<input id="search-q" name="q" type="search" placeholder="标题、正文、索引号或发文字号" autocomplete="off">\
<button type="submit">搜索</button></form>
<p id="search-status" role="status" aria-live="polite">\
<noscript>搜索需要浏览器启用 JavaScript；也可以按\
<a href="{{ root }}index.html#directory">信息公开目录</a>浏览。</noscript></p>
<ol class="hits" id="search-hits"></ol>
<p class="more"><button type="button" id="search-more" hidden>显示更多结果</button></p>
<p class="count">新发布的信息在下一次建立索引后可以搜到；已撤下的信息不会出现在结果中。</p>
{% endblock %}
""",
}

_SCRIPT = """\
"use strict";
(function () {
  const root = new URL(".", document.currentScript.src);
  const PAGE = 10;
  let bundle = null, shards = null, cache = new Map(), hits = [], shown = 0, asked = 0, words = [];
  const $ = (id) => document.getElementById(id);
  @TERMS@
  @SHARDS@
  const hex = (n, width) => n.toString(16).padStart(width, "0");
  const file = (path) => new URL("search/" + bundle + "/" + path, root);
  // a missing file: 404, or 403 from a bucket that lets readers get objects but not list them
  const missing = (res) => res.status === 404 || res.status === 403;

  async function pointer() {
    const res = await fetch(new URL("search/current.json", root), { cache: "no-store" });
    if (missing(res)) return null;
    if (!res.ok) throw new Error("search/current.json: HTTP " + res.status);
    return res.json();
  }

  // a file of the current bundle, fetched once (a bundle's files never change, except doc/ ones
  // that are deleted: those are not cached)
  function cached(path, how) {
    if (!cache.has(path)) {
      cache.set(path, fetch(file(path)).then((res) => {
        if (missing(res)) return null;
        if (!res.ok) throw new Error(path + ": HTTP " + res.status);
        return how === "bin" ? res.arrayBuffer().then((b) => new Uint8Array(b)) : res.json();
      }).catch((e) => { cache.delete(path); throw e; }));
    }
    return cache.get(path);
  }

  // the postings of a term: {docs: Uint32Array, imp: Uint8Array}, or null when no page has it
  async function postings(term) {
    const shard = await cached("dict/" + hex(termHash(term) % shards.dict, 3) + ".json", "json");
    const entry = shard && shard[term];
    if (!entry) return null;
    const [df, data] = entry;
    let bytes;
    if (typeof data === "number") bytes = await cached("post/" + data + ".bin", "bin");
    else bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const docs = new Uint32Array(df), imp = new Uint8Array(df);
    let p = 0, doc = 0;
    for (let i = 0; i < df; i++) {
      let gap = 0, shift = 0, b;
      do { b = bytes[p++]; gap += (b & 127) * 2 ** shift; shift += 7; } while (b & 128);
      doc += gap;
      docs[i] = doc;
      imp[i] = bytes[p++];
    }
    return { docs, imp };
  }

  // the pages holding every term, best first: scores summed, ties by page number (newest first)
  async function find(query, gone) {
    const unique = [...new Set(terms(query))];
    if (!unique.length) return [];
    const lists = await Promise.all(unique.map(postings));
    if (lists.some((l) => l === null)) return [];
    lists.sort((a, b) => a.docs.length - b.docs.length);
    let docs = lists[0].docs, score = Uint32Array.from(lists[0].imp);
    for (const next of lists.slice(1)) {
      const d2 = new Uint32Array(docs.length), s2 = new Uint32Array(docs.length);
      let n = 0, j = 0;
      for (let i = 0; i < docs.length; i++) {
        const doc = docs[i];
        while (j < next.docs.length && next.docs[j] < doc) j++;
        if (j === next.docs.length) break;
        if (next.docs[j] === doc) { d2[n] = doc; s2[n++] = score[i] + next.imp[j]; }
      }
      docs = d2.subarray(0, n);
      score = s2.subarray(0, n);
    }
    // a counting sort by score, high to low; the pages stay in number order within a score
    let top = 0;
    for (const s of score) if (s > top) top = s;
    const start = new Uint32Array(top + 2);
    for (let i = 0; i < docs.length; i++) if (!gone.has(docs[i])) start[top - score[i] + 1]++;
    for (let s = 1; s <= top + 1; s++) start[s] += start[s - 1];
    const ranked = new Array(start[top + 1]);
    for (let i = 0; i < docs.length; i++) if (!gone.has(docs[i])) ranked[start[top - score[i]]++] = docs[i];
    return ranked;
  }

  // the stored text around the first word of the query found in it, the words marked; built from
  // text nodes and <mark> elements only
  function excerpt(text) {
    const p = document.createElement("p");
    p.className = "excerpt";
    const lower = text.toLowerCase();
    let first = -1;
    for (const w of words) {
      const at = lower.indexOf(w);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    const from = first > 20 ? first - 20 : 0, to = Math.min(text.length, from + 90);
    let at = from;
    while (at < to) {
      let next = -1, len = 0;
      for (const w of words) {
        const i = lower.indexOf(w, at);
        if (i >= 0 && i < to && (next < 0 || i < next || (i === next && w.length > len))) { next = i; len = w.length; }
      }
      if (next < 0) { p.append(text.slice(at, to)); break; }
      p.append(text.slice(at, next));
      const m = document.createElement("mark");
      m.textContent = text.slice(next, next + len);
      p.append(m);
      at = next + len;
    }
    if (from > 0) p.prepend("…");
    if (to < text.length) p.append("…");
    return p;
  }

  function item(data) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = root.pathname + data.url;
    a.textContent = data.title || data.url;
    li.append(a, excerpt(data.text || ""));
    const bits = [];
    if (data.index_no) bits.push("索引号：" + data.index_no);
    if (data.doc_number) bits.push("发文字号：" + data.doc_number);
    if (data.date) bits.push("发布日期：" + data.date);
    if (bits.length) {
      const line = document.createElement("p");
      line.className = "meta-line";
      line.textContent = bits.join("　");
      li.append(line);
    }
    return li;
  }

  async function doc(n) {
    const res = await fetch(file("doc/" + n + ".json"));
    if (missing(res)) return null; // withdrawn since the pointer was read
    if (!res.ok) throw new Error("doc/" + n + ".json: HTTP " + res.status);
    return res.json();
  }

  // the one page whose 索引号 or 发文字号 the query is
  async function exact(query, gone) {
    const k = idKey(query);
    if (!/[0-9]/.test(k)) return null;
    const table = await cached("ids/" + hex(idHash(k) % shards.ids, 2) + ".json", "json");
    const n = table && table[k];
    return n === undefined || n === null || gone.has(n) ? null : n;
  }

  async function more() {
    const n = asked;
    const batch = await Promise.all(hits.slice(shown, shown + PAGE).map(doc));
    if (n !== asked) return;
    for (const d of batch) if (d) $("search-hits").append(item(d));
    shown += batch.length;
    $("search-more").hidden = shown >= hits.length;
  }

  function done(query) {
    $("search-hits").setAttribute("aria-busy", "false");
    $("search-hits").dataset.doneFor = query;
  }

  async function run(query) {
    const n = ++asked;
    const status = $("search-status");
    $("search-hits").replaceChildren();
    $("search-hits").setAttribute("aria-busy", "true");
    $("search-more").hidden = true;
    hits = [];
    shown = 0;
    const url = new URL(location.href);
    if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    if (!query.trim()) { status.textContent = "请输入要搜索的词语、索引号或发文字号。"; done(query); return; }
    status.textContent = "正在搜索…";
    try {
      const current = await pointer();
      if (!current) { status.textContent = "本站的搜索索引尚未建立，请稍后再试。"; done(query); return; }
      if (bundle !== current.bundle) { bundle = current.bundle; shards = current.shards; cache = new Map(); }
      const gone = new Set(current.gone || []);
      const [found, top] = await Promise.all([find(query, gone), exact(query, gone)]);
      if (n !== asked) return;
      words = [...new Set(query.normalize("NFKC").toLowerCase().split(/[^\\u3400-\\u9fff\\uf900-\\ufaffa-z0-9]+/))]
        .filter((w) => w);
      hits = top === null ? found : [top, ...found.filter((d) => d !== top)];
      status.textContent = hits.length ? "找到 " + hits.length + " 条结果。" : "没有找到与“" + query + "”相关的信息。";
      await more();
    } catch (e) {
      if (n === asked) status.textContent = "搜索暂时不可用（" + e.message + "），请稍后再试。";
    }
    if (n === asked) done(query);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("search-form"), box = $("search-q");
    if (!form) return;
    let timer = null;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); clearTimeout(timer); run(box.value); });
    box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => run(box.value), 250); });
    $("search-more").addEventListener("click", () => more());
    const q = new URL(location.href).searchParams.get("q") || "";
    box.value = q;
    if (q) run(q);
  });
})();
"""

SEARCH_SCRIPT = _SCRIPT.replace("@TERMS@", TERMS_JS.replace("\n", "\n  ")).replace(
    "@SHARDS@", SHARDS_JS.replace("\n", "\n  ")
)
