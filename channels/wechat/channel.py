"""WeChat Official Account (微信公众号): draft → freepublish, with the outcome from the callback or polling.

The steps of one delivery, each recorded with ``ctx.save_state`` before the next is taken::

    (validate) → thumb (permanent material, cached by hash) → content images (uploadimg, cached by hash)
      → step=drafting, draft_adds+1 → draft/add → draft_media_id, step=drafted
      → (draft_adds > 1: delete our other drafts; once more after publication) → step=submitting
      → freepublish/submit → publish_id, step=submitted   ──(InProgress)──┐
      → PUBLISHJOBFINISH callback (kv) or freepublish/get  → article_id, url, step=published ◄┘

``draft/add`` has no idempotency key: :mod:`channels.wechat.drafts` counts, searches and sweeps the
draft box so that a lost answer leaves no orphan draft.

``freepublish/submit`` has none either. When an attempt dies (or times out) after
``step=submitting`` was saved but before ``publish_id`` was, the next call *reconciles*: it looks for
the article in ``freepublish/batchget`` (same title and thumb, published since the attempt), waits
while the draft may still be in a running job, and re-submits only when the draft is still in the
draft box after ``reconcile_grace`` seconds — WeChat removes a draft once it is published, so a
draft still there means no article came of it (:mod:`channels.wechat.reconcile`). No article is
ever published twice.

With ``mass_send`` the draft is sent with ``message/mass/sendall`` instead of freepublish; its
``clientmsgid`` (derived from the delivery) makes a repeated send after a crash a no-op (45065).

The API client and its shared access token are in :mod:`channels.wechat.client`, the article and its
media in :mod:`channels.wechat.articles`, the callback in :mod:`channels.wechat.callback`, the
account's published articles and their statistics in :mod:`channels.wechat.stats`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from channels.wechat.articles import Articles
from channels.wechat.callback import Callbacks
from channels.wechat.client import ApiClient, KVSessionStorage
from channels.wechat.config import AUTHOR_MAX, DIGEST_MAX, WeChatConfig
from channels.wechat.drafts import NEW_DRAFT, DraftBox
from channels.wechat.errors import PUBLISH_STATUS
from channels.wechat.reconcile import SubmitReconciler
from channels.wechat.stats import AccountArticles
from publisher.channel import (
    AmbiguousOutcome,
    Asset,
    CallbackReply,
    Channel,
    ChannelEnv,
    DeliveryContext,
    HealthReport,
    InProgress,
    LinkStatus,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
    RemotePublication,
    StatRow,
    TransientChannelError,
    env_secret,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class WeChatChannel(Channel):
    """Publishes an item as a WeChat Official Account article (freepublish, optionally mass send)."""

    type_name = "wechat"
    label = "微信公众号"
    Config = WeChatConfig
    supports_withdraw = True
    supports_stats = True
    supports_listing = True
    default_max_concurrency = 1
    default_rate_per_minute = 20

    author_max = AUTHOR_MAX
    digest_max = DIGEST_MAX

    def __init__(self, name: str, config: WeChatConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self.config: WeChatConfig = config
        secret = env_secret(config.secret_env, what=f"WeChat channel {name!r}: the AppSecret")
        self._callback_token = (
            env_secret(config.callback_token_env, what=f"WeChat channel {name!r}: the callback Token")
            if config.callback_token_env
            else None
        )
        self._aes_key = (
            env_secret(config.encoding_aes_key_env, what=f"WeChat channel {name!r}: the EncodingAESKey")
            if config.encoding_aes_key_env
            else None
        )
        self._prefix = f"wechat:{config.appid}:"
        # uploaded media belong to one API host: the sandbox's ids mean nothing to WeChat and back
        self._media_prefix = f"{self._prefix}{hashlib.sha256(config.api_base.encode()).hexdigest()[:8]}:"
        self._session = KVSessionStorage(env.kv, self._prefix, env.clock)
        self.client = ApiClient(
            api_base=config.api_base,
            appid=config.appid,
            secret=secret,
            session=self._session,
            timeout=config.timeout,
            endpoint=config.token_endpoint,
            clock=env.clock,
            label=name,
        )
        self.articles = Articles(
            config, self.client, env.kv, self._media_prefix, author_max=self.author_max, digest_max=self.digest_max
        )
        self.drafts = DraftBox(self.client, env.clock, name)
        self.reconciler = SubmitReconciler(self.client, config, env.clock, name)
        self.published = AccountArticles(self.client, env.kv, self._prefix, env.clock, name)
        self.callbacks = Callbacks(
            token=self._callback_token,
            aes_key=self._aes_key,
            appid=config.appid,
            max_age=config.callback_max_age,
            kv=env.kv,
            prefix=self._prefix,
            clock=env.clock,
            label=name,
        )

    def close(self) -> None:
        self.client._http.close()

    # ============================================================================ the boundary
    def _call(self, what: str, fn: Callable[..., T], *args: Any, ambiguous: bool = False, **kw: Any) -> T:
        return self.client.call(what, fn, *args, ambiguous=ambiguous, **kw)

    def _refresh_token(self, rejected: str | None) -> None:
        self.client.refresh_token(rejected)

    # ============================================================================ review time
    def validate(self, post: Post) -> list[str]:
        return self.articles.problems(post)

    def _thumb(self, cover: Asset) -> dict[str, str]:
        return self.articles.thumb(cover)

    # ============================================================================== publish
    def publish(self, post: Post, ctx: DeliveryContext) -> Published | InProgress:
        st = ctx.state
        if st.get("article_id") or st.get("mass_msg_id"):
            self.drafts.last_sweep(ctx)  # in case the worker died between recording the article and sweeping
            return Published(url=st.get("url"), remote_id=st.get("article_id") or f"mass-{st.get('msg_data_id')}")
        if st.get("publish_id"):
            return self._follow(post, ctx)
        if st.get("step") == "submitting":
            outcome = self.reconciler.reconcile(post, ctx, self._done)
            if outcome is not None:
                return outcome
        if st.get("step") == "sending":
            return self._mass_send(post, ctx)
        problems = self.validate(post)
        if problems:
            raise PermanentChannelError("WeChat cannot take this item: " + "; ".join(problems))
        article = self.articles.build(post)
        media_id = st.get("draft_media_id")
        if not media_id and st.get("step") == "drafting":
            # a draft/add went out and its answer was never recorded: the draft may be in the box
            found = self.drafts.ours(ctx, article)
            if found:
                # the thumb it carries (the cache may hold another id by now) is what reconcile looks for
                media_id, thumb = found[0]
                ctx.save_state(draft_media_id=media_id, step="drafted", thumb_media_id=thumb)
        if not media_id:
            # thumb_media_id is the thumb of the draft to be submitted: set here, when a draft is made,
            # and never from the cache for a draft made earlier (another worker may have replaced it)
            ctx.save_state(thumb_media_id=article["thumb_media_id"])
            media_id = self.drafts.add(article, ctx, remake=lambda: self.articles.rebuild(post))
        if int(st.get("draft_adds") or 0) > 1 and not st.get("drafts_swept"):
            self.drafts.sweep(ctx, article, keep=media_id)  # before the submit: retried until it is done
        if self.config.mass_send:
            ctx.save_state(step="sending")
            return self._mass_send(post, ctx)
        return self._submit(ctx)

    def _submit(self, ctx: DeliveryContext) -> InProgress:
        media_id = ctx.state["draft_media_id"]
        ctx.save_state(step="submitting", submitting_since=self.env.clock().isoformat())
        try:
            res = self._call(
                "submitting the draft for publication",
                self.client.freepublish.submit,
                media_id,
                ambiguous=True,
            )
        except AmbiguousOutcome:
            raise  # step stays "submitting": the next attempt reconciles before any re-submit
        except PermanentChannelError as exc:
            if exc.code == 40007 and ctx.state.get("unconfirmed_since"):
                # a re-submit after an unconfirmed one: the draft may be in that submit's job still
                # running (WeChat refuses it then), so look for that article again, never a new draft
                ctx.save_state(step="submitting", submitting_since=ctx.state["unconfirmed_since"])
                return InProgress(
                    check_again_in=timedelta(seconds=self.config.poll_intervals[0]),
                    note="WeChat refused a re-submit of the draft; looking for the article of the first submit",
                )
            if exc.code == 40007:  # the draft left the box without a submit of ours: make it again
                ctx.save_state(step=None, draft_media_id=None, **NEW_DRAFT)
                raise TransientChannelError(
                    "the WeChat draft disappeared before it was submitted; it will be made again"
                ) from exc
            ctx.save_state(step="drafted")
            raise
        except (TransientChannelError, QuotaExceeded):
            ctx.save_state(step="drafted")  # WeChat answered with an error: nothing was submitted
            raise
        ctx.save_state(
            step="submitted",
            publish_id=str(res["publish_id"]),
            msg_data_id=str(res.get("msg_data_id") or ""),
            polls=0,
        )
        return InProgress(
            check_again_in=timedelta(seconds=self.config.poll_intervals[0]),
            note=f"WeChat publish job {res['publish_id']} accepted",
        )

    def _follow(self, post: Post, ctx: DeliveryContext) -> Published | InProgress:
        st = ctx.state
        pid = st["publish_id"]
        event = self._event(pid)
        if event is None:
            event = self._call("checking the publish job", self.client.freepublish.get, pid)
        status = int(event.get("publish_status", 1))
        if status == 1:
            polls = int(st.get("polls", 0)) + 1
            ctx.save_state(polls=polls)
            wait = self.config.poll_intervals[min(polls, len(self.config.poll_intervals) - 1)]
            return InProgress(check_again_in=timedelta(seconds=wait), note=f"WeChat is publishing (job {pid})")
        if status == 0:
            items = (event.get("article_detail") or {}).get("item") or []
            url = items[0].get("article_url") if items else None
            if not url:
                url = self._article_url(str(event["article_id"]))
            return self._done(ctx, str(event["article_id"]), url)
        # definitive: nothing is live. Forget the job so that a deliberate retry starts from a new draft.
        failed = [*st.get("failed_publish_ids", []), pid]
        # the draft of a failed job stays in the box (for the editor to look at): never adopt it again
        failed_drafts = [*st.get("failed_drafts", []), st.get("draft_media_id")]
        ctx.save_state(
            step=None,
            publish_id=None,
            draft_media_id=None,
            failed_drafts=[d for d in failed_drafts if d],
            **NEW_DRAFT,
            polls=0,
            failed_publish_ids=failed,
            publish_status=status,
        )
        reason = PUBLISH_STATUS.get(status, f"publishing failed with status {status}")
        raise PermanentChannelError(
            f"WeChat did not publish the article: {reason} (publish_id {pid}, "
            f"publish_status {status}); see the MP console for details",
            code=f"publish_status={status}",
        )

    def _article_url(self, article_id: str) -> str | None:
        res = self._call("looking up the article", self.client.freepublish.getarticle, article_id)
        items = res.get("news_item") or []
        return items[0].get("url") if items else None

    def _done(self, ctx: DeliveryContext, article_id: str, url: str | None) -> Published:
        ctx.save_state(step="published", article_id=article_id, url=url)
        self.published.record(article_id, ctx.state.get("msg_data_id") or "", url)
        self.drafts.last_sweep(ctx)
        return Published(url=url, remote_id=article_id)

    def _mass_send(self, post: Post, ctx: DeliveryContext) -> Published:
        """群发: ``clientmsgid`` makes a repeated send a no-op (45065 names the earlier message)."""
        st = ctx.state
        client_msg_id = f"publisher-{self.config.appid}-{ctx.idempotency_key}"[:64]
        tag = self.config.mass_send_tag_id
        try:
            res = self._call(
                "mass-sending the article",
                self.client.message.send_mass_article,
                st["draft_media_id"],
                tag,
                is_to_all=tag is None,
                client_msg_id=client_msg_id,
                ambiguous=True,
            )
        except PermanentChannelError as exc:
            if exc.code != 45065:
                raise
            res = {"msg_id": "existing", "msg_data_id": st.get("msg_data_id") or ""}
        ctx.save_state(step="published", mass_msg_id=str(res.get("msg_id")), msg_data_id=str(res.get("msg_data_id")))
        self.drafts.last_sweep(ctx)
        return Published(url=None, remote_id=f"mass-{res.get('msg_data_id')}")

    # ============================================================================== callback
    def _event(self, publish_id: str) -> dict[str, Any] | None:
        return self.callbacks.event(publish_id)

    def handle_callback(
        self, method: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> CallbackReply:
        return self.callbacks.handle(method, query, headers, body)

    # ============================================================================== after
    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        article_id = ctx.remote_id or ctx.state.get("article_id")
        if not article_id:
            raise PermanentChannelError("nothing to withdraw: this delivery has no WeChat article id")
        try:
            self._call("deleting the article", self.client.freepublish.delete, article_id, 0)
        except PermanentChannelError as exc:
            if exc.code != 53600:
                raise
            log.info("wechat %s: article %s was already gone", self.name, article_id)

    def check_url(self, url: str) -> LinkStatus:
        """Ask the API, not the page: WeChat serves a deleted article's page with 200."""
        status = self.published.check_url(url)
        return super().check_url(url) if status is None else status

    def stats_final_through(self, now: datetime) -> date:
        return self.published.final_through(now)

    def fetch_stats(self, remote_ids: Iterable[str], since: date, until: date) -> list[StatRow]:
        return self.published.fetch_stats(remote_ids, since, until)

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        return self.published.list_publications(since)

    def check_health(self) -> HealthReport:
        warnings: list[str] = []
        if not self._callback_token:
            warnings.append("no callback Token configured: publish results are found by polling freepublish/get")
        try:
            self._call("checking the access token", self.client.draft.count)
        except QuotaExceeded as exc:
            return HealthReport(ok=False, detail=str(exc), warnings=tuple(warnings))
        except (TransientChannelError, PermanentChannelError) as exc:
            return HealthReport(ok=False, detail=str(exc), warnings=tuple(warnings))
        return HealthReport(ok=True, detail=f"access token valid for {self.config.appid}", warnings=tuple(warnings))
