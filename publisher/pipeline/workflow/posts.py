"""What a channel receives: the frozen post of an item, built one way for the ORM paths (review
time, a copy kit) and the dispatcher's batched Core read (:func:`snapshot_posts`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from publisher.channel import Asset as PostAsset
from publisher.channel import PermanentChannelError, Post, site_page_path
from publisher.checklist import checklist_name
from publisher.db import one_of, records
from publisher.errors import ContentNotAccepted
from publisher.models import Asset, DeliveryOp, Item, ItemStatus, PrivacyDecision, PrivacyFinding, Review, User
from publisher.pipeline import content
from publisher.pipeline.privacy import Finding, WordList, words_for
from publisher.pipeline.workflow.catalogue import COLUMNS as CATALOGUE_COLUMNS
from publisher.pipeline.workflow.catalogue import has_links, post_catalogue, related_links
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.display import shown_end
from publisher.pipeline.workflow.privacy import unresolved_in_post
from publisher.pipeline.workflow.states import _cleared
from publisher.pipeline.workflow.wording import for_channel
from publisher.pipeline.workflow.wording import unresolved as unresolved_wording


def build_post(ctx: Context, session: Session, item: Item, channel: str | None = None) -> Post:
    """The frozen snapshot a channel receives: ``channel``'s, with its wording (issue 14), when named;
    else the item's own post, every asset included (a cover written for one channel too)."""
    assets = session.exec(select(Asset).where(Asset.item_id == item.id).order_by(Asset.id)).all()
    author = session.get(User, item.author_id)
    related = related_links(session.connection(), [item.id]).get(item.id, ())  # type: ignore[list-item]
    post = _post(ctx, item, assets, (author.display_name or author.name) if author else "", related)
    return post if channel is None else for_channel(post, (item.overrides or {}).get(channel))


def _post(ctx: Context, item: Any, assets: Iterable[Any], author: str, related: Any = ()) -> Post:
    """The post of an item row (ORM or Core) with its asset rows and its author's name."""
    return Post(
        item_id=item.id,
        title=item.title,
        body_markdown=item.body_markdown,
        body_html=item.body_html,
        summary=item.summary,
        category=item.category,
        department=item.department,
        author=author,
        publish_at=item.publish_at or item.updated_at,
        updated_at=item.updated_at,
        checklist_item=item.checklist_item,
        checklist_name=checklist_name(item.checklist_item),
        assets=tuple(
            PostAsset(
                sha256=a.sha256,
                path=content.local_media(ctx.settings.media_dir, a.sha256, ctx.settings.media_store()),
                filename=a.filename,
                content_type=a.content_type,
                role=a.role,
                width=a.width,
                height=a.height,
                alt=a.alt or "",
            )
            for a in assets
        ),
        channels=tuple(item.channels),
        site_url=ctx.settings.site_base_url + site_page_path(item.id),
        version=item.version,
        display_ends_at=shown_end(ctx, item),
        display_ended=item.display_ended_at is not None,
        catalogue=post_catalogue(item, related),
    )


def alt_text_problems(
    body_markdown: str,
    names: Mapping[str, str] | None = None,
    cover: PostAsset | None = None,
    cover_fix: str = "`cover_alt: 校门口合影` in the front matter",
) -> list[str]:
    """One problem per image of the body without alt text (替代文本), and one for a ``cover`` without
    it (``cover_fix``: where its alt text is written), whatever the channels.

    Readers who cannot see the picture (a screen reader, an image that did not load) get only its alt
    text, so every picture needs one before review. ``names``: ``asset://sha`` -> the file name to show
    in its place (a body read from a file holds the references once stored, not what the author wrote).
    """
    problems = []
    for line, written in content.images_without_alt(body_markdown):
        for ref, name in (names or {}).items():
            written = written.replace(ref, name)
        target = written[written.find("(") + 1 : -1].strip() if written.endswith(")") else "图片.png"
        fix = f"write what the picture shows: ![校门口合影]({target})"
        problems.append(f"图片缺少替代文本 (alt text): line {line} `{written}` — {fix}")
    if cover is not None and not cover.alt.strip():
        problems.append(
            f"封面图缺少替代文本 (alt text): the cover `{cover.filename}` — say what it shows with {cover_fix}"
        )
    return problems


def _written_names(post: Post) -> dict[str, str]:
    # an item file's images keep the file name the author wrote; a body typed in the web workspace
    # holds ``asset://sha`` itself (its assets are named by their hash), so it is shown as typed
    return {a.ref: a.filename for a in post.assets if not a.filename.startswith(a.sha256[:12])}


def check_channels_accept(ctx: Context, session: Session, item: Item, *, alt_text: bool = False) -> None:
    """Ask every target channel whether it can take the item (review time, no network).

    ``alt_text``: also refuse images without alt text (at submit; items submitted before the rule
    are not stopped at their second review for it).
    """
    post = build_post(ctx, session, item)
    problems = alt_text_problems(post.body_markdown, _written_names(post), post.cover) if alt_text else []
    overrides = item.overrides or {}
    for name in item.channels:
        wording = overrides.get(name, {})
        if alt_text and ("body" in wording or "cover" in wording):
            cover = for_channel(post, wording).cover
            if cover is None or cover.sha256 != wording.get("cover"):
                cover = None  # the item's own (judged above), or a cover it does not hold (validate says so)
            fix = f"`{name}.cover_alt` (front matter: `overrides: {{{name}: {{cover_alt: 校门口合影}}}}`)"
            problems.extend(
                f"{name} wording: {p}"
                for p in alt_text_problems(wording.get("body", ""), _written_names(post), cover, fix)
            )
        spec = ctx.channels.get(name)
        if spec is None:
            problems.append(f"{name}: channel is no longer configured")
            continue
        problems.extend(f"{name}: {p}" for p in spec.channel.validate(for_channel(post, overrides.get(name))))
    if problems:
        raise ContentNotAccepted("; ".join(problems), channel=",".join(item.channels), problems=problems)


class PrivacyRefused(PermanentChannelError):
    """The post holds a privacy finding no 保密审查 decision cleared: it is not sent (issue 12)."""


@dataclass(frozen=True)
class PostSnapshot:
    """An item as the dispatcher saw it: its post, whether it is cleared, and what dates them.

    ``cleared_findings``: (kind, where, masked) of the findings of this version the 保密审查 reviewer
    cleared; ``words``: how to get the office's word list (read once per batch, when first needed).
    """

    version: int
    publish_at: Any
    updated_at: Any
    post: Post
    cleared: bool
    withdrawn: bool = False
    cleared_findings: frozenset[tuple[str, str, str]] = frozenset()
    words: Callable[[], WordList | None] = field(default=lambda: None, compare=False, repr=False)
    #: the item's per-channel wording (Item.overrides): each channel's post carries its own
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def post_for(self, op: str, channel: str) -> Post | None:
        """The post if ``op`` may go out on ``channel`` now, else None (the dispatcher then refuses).

        A take-down always may. Anything else needs both approvals of the current version, an item
        not withdrawn, and a channel still on the item's list: once a withdrawal (or the removal of
        the channel) is recorded, the take-down is the only call its deliveries may still make.
        A post holding a privacy finding nobody cleared raises :class:`PrivacyRefused`, whatever the
        approvals say (the re-check of :attr:`unresolved`).
        """
        wording = self.overrides.get(channel)
        if op == DeliveryOp.WITHDRAW:
            # taking a page down is never held back: it is how an exposure ends
            return for_channel(self.post, wording)
        if not (self.cleared and not self.withdrawn and channel in self.post.channels):
            return None
        found = self.unresolved + tuple(
            unresolved_wording(channel, wording, self.cleared_findings, self.words()) if wording else ()
        )
        if found:
            raise PrivacyRefused(refusal(self.post.item_id, found))
        return for_channel(self.post, wording)

    @functools.cached_property
    def unresolved(self) -> tuple[Finding, ...]:
        """The post's findings no cleared decision covers: checked once per snapshot, whichever of the
        item's channels starts first (a regex scan of the texts and a read of each attachment).

        Defence in depth like the approval re-check: the gate refuses the 保密审查 approval while a
        finding is undecided, but a row deleted or a body changed by hand after approval, a decision
        recorded on the wrong finding, or a word added to the list since, are caught here.
        """
        return tuple(unresolved_in_post(self.post, self.cleared_findings, self.words()))


def refusal(item_id: int, findings: Iterable[Finding]) -> str:
    """The reason kept on a refused delivery: how many findings, their kinds and places, masked values
    only (a Finding never holds the raw number)."""
    found = list(findings)
    kinds = ", ".join(dict.fromkeys(f.kind for f in found))
    places = "; ".join(f"{f.kind} {f.masked} at {f.where}" for f in found[:5])
    more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
    s = "s" if len(found) != 1 else ""
    return (
        f"refused: the post holds {len(found)} privacy finding{s} nobody cleared ({kinds}): {places}{more}; "
        f"see publisher privacy list {item_id}"
    )


@functools.cache
def _snapshot_statements(dialect: str) -> tuple[Any, Any, Any, Any, Any]:
    """The five statements of :func:`snapshot_posts`, built once per dialect, each list bound as one
    value (:func:`publisher.db.one_of`): building a statement, or expanding an ``in_`` list, cost more
    than running it on the dispatcher's hot path. (The related links are a sixth read,
    :func:`~publisher.pipeline.workflow.catalogue.related_links`, made only for a batch in which an
    item has some.)"""
    it, rv, at, us, pf = (
        Item.__table__,
        Review.__table__,
        Asset.__table__,  # type: ignore[attr-defined]
        User.__table__,
        PrivacyFinding.__table__,
    )  # type: ignore[attr-defined]
    return (
        sa.select(
            it.c.id,
            it.c.title,
            it.c.body_markdown,
            it.c.body_html,
            it.c.summary,
            it.c.category,
            it.c.department,
            it.c.author_id,
            it.c.publish_at,
            it.c.updated_at,
            it.c.checklist_item,
            it.c.channels,
            it.c.version,
            it.c.status,
            it.c.display_working_days,
            it.c.display_ends_at,
            it.c.display_ended_at,
            *(it.c[name] for name in CATALOGUE_COLUMNS),
            # whether the links need reading at all: an index probe here costs less than a sixth query
            has_links(it.c.id),
            it.c.overrides,
        ).where(one_of(dialect, it.c.id, "ids")),
        sa.select(rv.c.id, rv.c.item_id, rv.c.item_version, rv.c.level, rv.c.reviewer_id, rv.c.approved)
        .where(one_of(dialect, rv.c.item_id, "ids"))
        .order_by(rv.c.id),
        sa.select(at).where(one_of(dialect, at.c.item_id, "ids")).order_by(at.c.id),
        sa.select(us.c.id, us.c.name, us.c.display_name).where(one_of(dialect, us.c.id, "ids")),
        # every version's: few rows, and the current version is picked in Python (no second list bound)
        sa.select(pf.c.item_id, pf.c.item_version, pf.c.kind, pf.c.where, pf.c.masked).where(
            one_of(dialect, pf.c.item_id, "ids"), pf.c.decision == PrivacyDecision.CLEARED.value
        ),
    )


def snapshot_posts(ctx: Context, conn: Connection, item_ids: Iterable[int]) -> dict[int, PostSnapshot]:
    """:func:`build_post` and :func:`~publisher.pipeline.workflow.states.is_cleared` for many items in
    five queries (the dispatcher's batch), with the privacy findings cleared on each current version.

    Same rule as ``is_cleared`` (through ``_cleared``), read with Core statements so a claim of a
    hundred deliveries costs five round trips instead of five hundred ORM loads.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    q_items, q_reviews, q_assets, q_users, q_cleared = _snapshot_statements(conn.dialect.name)
    items = records(conn.execute(q_items, {"ids": ids}))
    newest: dict[tuple[int, int, int], Any] = {}
    for r in records(conn.execute(q_reviews, {"ids": ids})):
        newest[(r.item_id, r.item_version, r.level)] = r  # ascending ids: the newest wins
    assets: dict[int, list[Any]] = {i: [] for i in ids}
    for a in records(conn.execute(q_assets, {"ids": ids})):
        assets[a.item_id].append(a)
    authors = {
        u.id: (u.display_name or u.name) for u in conn.execute(q_users, {"ids": list({i.author_id for i in items})})
    }
    cleared: dict[tuple[int, int], set[tuple[str, str, str]]] = {}
    for f in conn.execute(q_cleared, {"ids": ids}):
        cleared.setdefault((f.item_id, f.item_version), set()).add((f.kind, f.where, f.masked))
    # the word list is read once per batch, and only if a post of it is checked: a broken list then
    # fails that start (retried with the reason), not the claim
    words = functools.cache(lambda: words_for(ctx.settings))
    linked = [i.id for i in items if i.has_links]
    links = related_links(conn, linked) if linked else {}
    out = {}
    for i in items:
        ok = _cleared(i.author_id, newest.get((i.id, i.version, 1)), newest.get((i.id, i.version, 2)))
        out[i.id] = PostSnapshot(
            version=i.version,
            publish_at=i.publish_at,
            updated_at=i.updated_at,
            post=_post(ctx, i, assets[i.id], authors.get(i.author_id, ""), links.get(i.id, ())),
            cleared=ok,
            withdrawn=i.status == ItemStatus.WITHDRAWN,
            cleared_findings=frozenset(cleared.get((i.id, i.version), ())),
            words=words,
            overrides=i.overrides or {},
        )
    return out
