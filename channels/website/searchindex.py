"""The site search's index (搜索): terms, the text of an item page, and the static files of a bundle.

The terms are those of Lucene's CJKAnalyzer — no dictionary, so the build here and ``search.js`` in
the reader's browser always cut text the same way (:func:`terms`, and ``TERMS_JS`` beside it, which
tests run in Chromium against the same strings):

* every pair of neighbouring CJK characters (a bigram) of a run of them, or the character itself
  when the run is one character long;
* every lower-cased run of ASCII letters and digits;
* and, for the title only, every CJK character on its own: a one-character query finds titles.

A query is the AND of its terms. The ranking is computed here, at build time: one impact byte per
(term, page) — BM25 with the title's terms counted ``TITLE_BOOST`` times and the idf floored at
``IDF_FLOOR``, quantised to 1-255 on one scale for all terms — so the browser only adds bytes. The
build adds the pages newest first, so equal scores fall in date order by page number alone.

Files of one bundle (``search/<bundle>/``)::

    dict/<xxx>.json   term → [df, postings as base64] or [df, <n>] when longer than INLINE_BYTES;
                      the term's shard is FNV-1a (32 bit) of its characters mod the bundle's number
                      of dictionary files (in search/current.json, :func:`shard_count`), in hex
    post/<n>.bin      the postings of a frequent term
    doc/<n>.json      one page: url, title, date, 索引号, 发文字号 and the first EXCERPT_CHARS of its text
                      (deleted at once when the item is withdrawn or updated: channels/website/search.py)
    ids/<xx>.json     exact 索引号/发文字号 → page number (:func:`id_key`; :func:`id_shard`, FNV-1a of the
                      key's UTF-8)

Postings are the page numbers in ascending order, each as the varint of its gap to the previous one
(the first: the number itself), followed by the page's impact byte.
"""

from __future__ import annotations

import base64
import math
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lxml.html

#: the most files of the term dictionary (dict/000.json … dict/fff.json), and the terms in one
#: that make a build use more files (a small site has few, so a query never asks for a missing one)
DICT_SHARDS, DICT_SHARD_TERMS = 4096, 300
#: the same for the exact 索引号/发文字号 lookup (ids/00.json … ids/ff.json)
ID_SHARDS, ID_SHARD_KEYS = 256, 500
#: postings up to this many bytes are written into the dictionary itself, longer ones into post/
INLINE_BYTES = 384
#: characters of a page's text kept for the excerpt (doc/<n>.json)
EXCERPT_CHARS = 300
#: a title's terms count as this many occurrences in the body
TITLE_BOOST = 5
K1, B = 1.2, 0.75
#: the least idf a term weighs: BM25 gives a word on nearly every page an idf near 0, which would
#: quantise every page to impact 1 and lose the title's boost; at this floor (a word on over ~3/4 of
#: the pages) a title or frequent mention still comes first
IDF_FLOOR = 0.3

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(f"[{_CJK}]+|[a-z0-9]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")

#: the same as :func:`terms`, for search.js (and for the test that runs both on the same strings)
TERMS_JS = (
    """\
function terms(text) {
  const found = [];
  for (const [run] of text.normalize("NFKC").toLowerCase().matchAll(/[CJK]+|[a-z0-9]+/g)) {
    if (!/[CJK]/.test(run[0]) || run.length === 1) found.push(run);
    else for (let i = 0; i + 1 < run.length; i++) found.push(run.slice(i, i + 2));
  }
  return found;
}"""
).replace("CJK", "\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff")


#: :func:`id_key`, :func:`fnv1a` and :func:`dict_shard_number`'s hash, for search.js (tested alike)
SHARDS_JS = """\
const idKey = (s) =>
  (s || "").replace(/\\s+/g, "").replace(/[\\[【〔(（]/g, "〔").replace(/[\\]】〕)）]/g, "〕").toLowerCase();
function idHash(s) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
function termHash(term) {
  let h = 0x811c9dc5;
  for (let i = 0; i < term.length; i++) h = Math.imul(h ^ term.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}"""


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def terms(text: str) -> list[str]:
    """The terms of ``text`` in order, repeats kept (a query uses each once)."""
    found: list[str] = []
    for run in _RUN.findall(normalise(text)):
        if len(run) == 1 or not _CJK_CHAR.match(run):
            found.append(run)
        else:
            found += [run[i : i + 2] for i in range(len(run) - 1)]
    return found


def title_terms(title: str) -> list[str]:
    """A title's terms: :func:`terms` and each of its CJK characters alone."""
    return terms(title) + _CJK_CHAR.findall(normalise(title))


# -------------------------------------------------------------------------------- exact numbers
_OPEN, _CLOSE = re.compile(r"[\[【〔(（]"), re.compile(r"[\]】〕)）]")


def id_key(text: str) -> str:
    """A 索引号 or 发文字号 as looked up: no spaces, any bracket as 〔〕 (readers type [2022] or
    （2022） for 〔2022〕), lower case. search.js normalises the query the same way."""
    return _CLOSE.sub("〕", _OPEN.sub("〔", re.sub(r"\s+", "", text))).lower()


def fnv1a(text: str) -> int:
    """FNV-1a (32 bit) of the UTF-8 of ``text``, as search.js computes it."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def shard_count(items: int, per: int, most: int) -> int:
    """How many files ``items`` keys go into: a power of two, about ``per`` keys a file, at most ``most``."""
    count = 1
    while count < most and count * per < items:
        count *= 2
    return count


def id_shard(key: str, shards: int = ID_SHARDS) -> str:
    """Which of ``shards`` files holds the exact number ``key``."""
    return f"{fnv1a(key) % shards:02x}"


def dict_shard_number(term: str, shards: int = DICT_SHARDS) -> int:
    """Which of ``shards`` files holds ``term``: FNV-1a over its characters (a term has only
    characters of the Basic Multilingual Plane, so each is one UTF-16 unit in search.js), which
    costs a third of hashing its UTF-8 at millions of terms."""
    h = 0x811C9DC5
    for c in term:
        h = ((h ^ ord(c)) * 0x01000193) & 0xFFFFFFFF
    return h % shards


def dict_shard(term: str, shards: int = DICT_SHARDS) -> str:
    """The name of :func:`dict_shard_number`'s file (``dict/<name>.json``)."""
    return f"{dict_shard_number(term, shards):03x}"


# -------------------------------------------------------------------------------- an item page
#: elements that end a line of text: their text is not run together with the next element's (an
#: inline element such as <strong> inside a sentence is, so its words still pair with their neighbours)
_BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "figcaption", "figure"}
    | {"footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre"}
    | {"section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
)
_SKIPPED = frozenset({"script", "style", "template"})
#: the marked part of an item page and its fields (``data-pagefind-*`` on pages written before the
#: site had its own index; they are read alike until the pages are next written)
_BODY = "//*[@data-search-body or @data-pagefind-body]"
_META = ("data-search-meta", "data-pagefind-meta")
#: the site's pages are UTF-8 (a page without a charset would be read as Latin-1)
_PARSER = lxml.html.HTMLParser(encoding="utf-8")


@dataclass
class PageText:
    """What the index takes from one item page: its marked part split by role."""

    title: str
    fields: str  #: the catalogue's values (索引号, 发布机构 …), indexed, not shown in the excerpt
    text: str  #: the rest: body, attachments' names, related items
    meta: dict[str, str] = field(default_factory=dict)  #: index_no, doc_number, date


def _text(el: Any, out: list[str]) -> None:
    if isinstance(el.tag, str) and el.tag not in _SKIPPED:
        out.append(el.text or "")
        for child in el:
            _text(child, out)
        if el.tag in _BLOCKS:
            out.append(" ")
    out.append(el.tail or "")


def _joined(els: Iterable[Any]) -> str:
    out: list[str] = []
    for el in els:
        _text(el, out)
        out[-1] = ""  # the tail after the part belongs to the element around it
        out.append(" ")
    return re.sub(r"\s+", " ", "".join(out)).strip()


def page_text(html: bytes) -> PageText | None:
    """The marked part of an item page; None for a page without one (a 公示期-ended notice)."""
    doc = lxml.html.fromstring(html, parser=_PARSER)
    found = doc.xpath(_BODY)
    if not found:
        return None
    title, fields, rest = [], [], []
    meta = {}
    for el in found[0].iter():
        for attr in _META:
            key = el.get(attr)
            if key:
                meta[key] = _joined([el])
    for el in found[0]:
        if not isinstance(el.tag, str):
            continue
        cls = (el.get("class") or "").split()
        if el.tag == "h1":
            title.append(el)
        elif el.tag == "table" and "catalogue" in cls:
            fields += el.iter("td")  # the labels (th) and the caption are the same on every page
        elif el.tag == "dl" and "meta" in cls:
            continue  # the department and date again, as a line for the eye
        else:
            rest.append(el)
    return PageText(_joined(title), _joined(fields), _joined(rest), meta)


# -------------------------------------------------------------------------------- the index
def _varint(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


class IndexBuilder:
    """The postings of pages added in order (page 0 first; search.js breaks ties by the lower number).

    Memory: one ``array('I')`` per term holding ``page << 8 | count`` (a count above 255 is 255),
    and one length per page — a few bytes per posting, no tuples."""

    def __init__(self) -> None:
        self.postings: dict[str, array[int]] = {}
        self.lengths = array("I")
        self._norm: list[float] | None = None

    @property
    def pages(self) -> int:
        return len(self.lengths)

    def add(self, page: PageText) -> int:
        """Index ``page``; its number."""
        number = len(self.lengths)
        counts = Counter(terms(page.fields))
        counts.update(terms(page.text))
        for term in title_terms(page.title):
            counts[term] += TITLE_BOOST
        self.lengths.append(sum(counts.values()))
        postings = self.postings
        base = number << 8
        for term, count in counts.items():
            packed = base | (count if count < 256 else 255)
            found = postings.get(term)
            if found is None:
                postings[term] = array("I", (packed,))
            else:
                found.append(packed)
        return number

    def encoded(self, terms: Iterable[str] | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(term, df, postings bytes) of ``terms`` (default: all), each freed once encoded; impacts on
        one scale for all terms, the highest possible 255. Call once all pages are added."""
        if self._norm is None:
            n = max(self.pages, 1)
            average = sum(self.lengths) / n or 1.0
            self._norm = [K1 * (1 - B + B * length / average) for length in self.lengths]
        n, norm = max(self.pages, 1), self._norm
        top = math.log(1 + (n - 0.5) / 1.5) * (K1 + 1)  # a term on one page, counted very often
        scale = 255 / top
        for term in list(self.postings) if terms is None else terms:
            packed = self.postings.pop(term)
            df = len(packed)
            weight = max(math.log(1 + (n - df + 0.5) / (df + 0.5)), IDF_FLOOR) * (K1 + 1) * scale
            out = bytearray()
            append = out.append
            last = 0
            for v in packed:
                page = v >> 8
                gap = page - last
                last = page
                if gap < 0x80:
                    append(gap)
                else:
                    _varint(gap, out)
                count = v & 0xFF
                impact = int(weight * count / (count + norm[page]) + 0.5)
                append(impact if 0 < impact < 256 else 1 if impact < 1 else 255)
            yield term, df, bytes(out)


def dict_entry(df: int, postings: bytes, number: int) -> list[Any]:
    """A term's entry: inline postings (base64) when short, else the number of its post/ file."""
    if len(postings) <= INLINE_BYTES:
        return [df, base64.b64encode(postings).decode("ascii")]
    return [df, number]


def decode(postings: bytes) -> list[tuple[int, int]]:
    """(page, impact) of encoded postings — what search.js does, for tests."""
    found, page, i, shift, gap = [], 0, 0, 0, 0
    while i < len(postings):
        b = postings[i]
        i += 1
        gap |= (b & 0x7F) << shift
        shift += 7
        if b & 0x80:
            continue
        page += gap
        found.append((page, postings[i]))
        i += 1
        gap = shift = 0
    return found
