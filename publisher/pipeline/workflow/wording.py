"""Per-channel wording (issue 14): a title, summary, body or cover an item carries for one channel.

Editors write one item, but WeChat wants a title of 32 characters, a digest and its own cover, Weibo a
status that fits with the link, the mailing list a shorter subject. ``Item.overrides`` holds, per target
channel, the fields written for it alone::

    {"wechat": {"title": "…", "summary": "…", "body": "…", "body_html": "…", "cover": "<sha256>",
                "cover_alt": "…"}}

The wording is part of the version: it is copied onto each ``ItemVersion`` (the reviewers' diff shows
it), a change to it is an edit like any other (back to review after an approval), the privacy check
reads it (``wechat.title``, ``wechat.body:LINE``, ``wechat.cover_alt``…) and the worker checks it again
before it goes out.
A channel receives it as the post it is given (:func:`for_channel`): the fields replaced and named in
``Post.wording``, so the channel's own ``validate`` judges the wording it would publish.

A cover written for one channel is an asset of the item with the role :data:`CHANNEL_COVER`: no other
channel's post carries it. Its alt text (``cover_alt``) is part of the wording, not of the asset: the
same picture may be two channels' covers, each described in its own words, and the reviewers see it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from publisher.channel import Post
from publisher.errors import ContentNotAccepted, InvalidInput
from publisher.pipeline import content
from publisher.pipeline.privacy import Finding, WordList
from publisher.pipeline.privacy.check import scan_text, wording_findings

#: what an editor may write for one channel, in the order they are shown
FIELDS = ("title", "summary", "body", "cover", "cover_alt")
#: the longest alt text of a cover (as the item's own ``cover_alt``)
ALT_MAX = 500
#: the role of an asset that is only some channel's cover (never the item's own cover or an image)
CHANNEL_COVER = content.CHANNEL_COVER
_SHA = re.compile(r"(?:asset://)?([0-9a-f]{64})")
TITLE_MAX = 500  # the item's own limit (models.Item.title); a channel's is its validate()'s


def check(raw: Any, *, channels: Collection[str], max_body_bytes: int) -> dict[str, dict[str, str]]:
    """The wording as stored, from what an editor gave (front matter, a form, JSON).

    ``raw``: {channel: {field: text}}; an empty field or a channel with no field left is dropped.
    ``channels``: the item's target channels, the only ones wording may be written for. Raises
    InvalidInput naming the channel and the field. The body is rendered (``body_html``) here, once.
    """
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(
            "overrides must map a channel to its fields, e.g. overrides: {wechat: {title: 短标题, summary: 摘要}}"
        )
    out: dict[str, dict[str, str]] = {}
    for channel, given in raw.items():
        name = str(channel)
        if given in (None, "", {}):
            continue
        if name not in channels:
            raise InvalidInput(
                f"overrides for {name!r}: it is not one of the item's channels ({', '.join(channels) or 'none'}); "
                "add it to the channels or remove its overrides"
            )
        if not isinstance(given, Mapping):
            raise InvalidInput(f"overrides for {name}: give its fields as field: text ({', '.join(FIELDS)})")
        unknown = sorted(str(k) for k in given if k not in FIELDS)
        if unknown:
            raise InvalidInput(
                f"overrides for {name}: unknown field(s) {', '.join(unknown)}; a channel's wording may set "
                f"{', '.join(FIELDS)}"
            )
        fields: dict[str, str] = {}
        for key in FIELDS:
            value = given.get(key)
            if value is None or not isinstance(value, str | int | float):
                if value is not None:
                    raise InvalidInput(f"overrides for {name}: {key} must be text")
                continue
            text = str(value).replace("\r\n", "\n")
            text = text.strip() if key != "body" else text.strip("\n")
            if not text.strip():
                continue
            fields[key] = text
        if "title" in fields:
            fields["title"] = " ".join(fields["title"].split())
            if len(fields["title"]) > TITLE_MAX:
                raise InvalidInput(
                    f"overrides for {name}: the title is {len(fields['title'])} characters; at most {TITLE_MAX}"
                )
        if "body" in fields:
            if len(fields["body"].encode()) > max_body_bytes:
                raise InvalidInput(f"overrides for {name}: the body is larger than review.max_body_bytes")
            fields["body_html"] = content.render_markdown(fields["body"])
        if "cover_alt" in fields:
            fields["cover_alt"] = " ".join(fields["cover_alt"].split())
            if "cover" not in fields:
                raise InvalidInput(
                    f"overrides for {name}: cover_alt is set but there is no cover; add the channel's cover or "
                    "drop its cover_alt (the item's own cover is described by the front matter's cover_alt)"
                )
            if len(fields["cover_alt"]) > ALT_MAX:
                raise InvalidInput(
                    f"overrides for {name}: cover_alt is {len(fields['cover_alt'])} characters; at most {ALT_MAX} "
                    "— say what the picture shows"
                )
        if "cover" in fields:
            m = _SHA.fullmatch(fields["cover"])
            if m is None:
                raise InvalidInput(
                    f"overrides for {name}: cover {fields['cover']!r} is not an image of the item; give a file "
                    "in an item file's front matter, or an uploaded image's asset://<sha256>"
                )
            fields["cover"] = m.group(1)
        if fields:
            out[name] = fields
    return out


def public(overrides: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    """The wording as an editor writes it (no rendered HTML; the cover as ``asset://<sha256>``), for the
    API, the CLI and the forms: what :func:`check` takes back."""
    return {
        ch: {k: f"asset://{v}" if k == "cover" else v for k, v in f.items() if k in FIELDS}
        for ch, f in sorted((overrides or {}).items())
    }


def for_channel(post: Post, wording: Mapping[str, str] | None) -> Post:
    """The post ``post``'s channel receives: its wording in place of the item's, named in ``Post.wording``.

    Every post a channel is given passes here, with or without wording: a cover written for some
    channel is taken out of all the others' posts.
    """
    assets = tuple(a for a in post.assets if a.role != CHANNEL_COVER)
    if not wording:
        return post if len(assets) == len(post.assets) else dataclasses.replace(post, assets=assets)
    changes: dict[str, Any] = {}
    if "title" in wording:
        changes["title"] = wording["title"]
    if "summary" in wording:
        changes["summary"] = wording["summary"]
    if "body" in wording:
        changes["body_markdown"] = wording["body"]
        changes["body_html"] = wording.get("body_html") or content.render_markdown(wording["body"])
    if "cover" in wording:
        cover = next((a for a in post.assets if a.sha256 == wording["cover"]), None)
        if cover is not None:
            # the item's own cover picked for a channel keeps its description unless the wording gives one
            described = dataclasses.replace(cover, role="cover", alt=wording.get("cover_alt") or cover.alt)
            assets = (described, *(a for a in assets if a.role != "cover"))
    return dataclasses.replace(post, assets=assets, wording=frozenset(k for k in FIELDS if k in wording), **changes)


def problems(post: Post, channels: Mapping[str, Any], overrides: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What each channel's ``validate`` says of its wording that it does not say of the item's own
    (those the submit reports, as today), each as ``CHANNEL wording: problem``.

    ``post``: the item's post; ``channels``: name -> the channel spec (``.channel``, ``.unavailable``).
    """
    found = []
    for name, wording in sorted(overrides.items()):
        spec = channels.get(name)
        if spec is None or getattr(spec, "unavailable", None) is not None:
            continue  # not configured, or without its secret here: the submit says so
        if "cover" in wording and not any(a.sha256 == wording["cover"] for a in post.assets):
            found.append(f"{name} wording: the cover {wording['cover'][:12]}… is not an image of this item")
        own = set(spec.channel.validate(for_channel(post, None)))
        found.extend(f"{name} wording: {p}" for p in spec.channel.validate(for_channel(post, wording)) if p not in own)
    return found


def refuse_problems(post: Post, channels: Mapping[str, Any], overrides: Mapping[str, Mapping[str, str]]) -> None:
    """:func:`problems`, raised as ContentNotAccepted (the save is refused, nothing stored)."""
    found = problems(post, channels, overrides)
    if found:
        raise ContentNotAccepted("; ".join(found), channel=",".join(sorted(overrides)), problems=found)


# ------------------------------------------------------------------------------------------- privacy
def findings(overrides: Mapping[str, Mapping[str, str]], words: WordList | None) -> list[Finding]:
    """The privacy findings of the wording, channel by channel: ``CHANNEL.title``, ``CHANNEL.summary``,
    ``CHANNEL.body:LINE`` and ``CHANNEL.cover_alt`` (the channel's cover's ``<img alt>``/``alt_text``).
    An override is published text: it is checked as the item's own is."""
    found: list[Finding] = []
    for name, wording in sorted(overrides.items()):
        found.extend(wording_findings(name, wording, words))
    return found


def unresolved(
    name: str,
    wording: Mapping[str, str] | None,
    cleared: Collection[tuple[str, str, str]],
    words: WordList | None,
) -> list[Finding]:
    """The worker's re-check of one channel's wording: its findings no cleared decision covers (same
    kind, place and masked value), and those of its stored HTML body that no cleared decision's kind and
    masked value cover (a body_html changed by hand after approval)."""
    if not wording:
        return []
    exact = set(cleared)
    out = [f for f in wording_findings(name, wording, words) if (f.kind, f.where, f.masked) not in exact]
    seen = {(k, m) for k, _, m in cleared} | {(f.kind, f.masked) for f in out}
    for f in scan_text(wording.get("body_html") or "", f"{name}.body_html", words):
        if (f.kind, f.masked) not in seen:
            seen.add((f.kind, f.masked))
            out.append(f)
    return out


# ---------------------------------------------------------------------------------------------- diff
def diff_lines(overrides: Mapping[str, Mapping[str, str]] | None) -> list[str]:
    """The wording as lines of text, for the reviewers' diff (after the title and body)."""
    lines: list[str] = []
    for name, wording in sorted((overrides or {}).items()):
        for key in FIELDS:
            value = wording.get(key)
            if value is None:
                continue
            if key == "body":
                lines += [f"[{name}] body:", *(f"    {ln}" for ln in value.splitlines())]
            elif key == "cover":
                lines.append(f"[{name}] cover: asset://{value[:12]}…")
            else:
                lines.append(f"[{name}] {key}: {value}")
    return lines


def merge(current: Any, pairs: Iterable[str]) -> dict[str, Any]:
    """``current`` (front matter's ``overrides``, or an item's) with ``CHANNEL.FIELD=TEXT`` pairs set (an empty TEXT
    drops the field), for ``--override`` on the command line. InvalidInput on a malformed pair."""
    if not isinstance(current, Mapping):
        check(current, channels=(), max_body_bytes=0)  # raises, naming the shape wanted
    # the rendered HTML is the service's to make; any other key is left for check() to name
    out = {
        str(ch): {k: v for k, v in f.items() if k != "body_html"} if isinstance(f, Mapping) else f
        for ch, f in current.items()
    }
    for pair in pairs:
        key, eq, value = pair.partition("=")
        channel, dot, name = key.strip().partition(".")
        if not (eq and dot and channel and name):
            raise InvalidInput(f"--override {pair!r}: write CHANNEL.FIELD=TEXT, e.g. --override wechat.title=短标题")
        if not isinstance(out.get(channel, {}), dict):
            out[channel] = {}
        out[channel] = {**out.get(channel, {}), name: value}
    return out
