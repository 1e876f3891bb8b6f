"""The privacy check (隐私/保密检查) in the web workspace and the JSON API (issue 12): the item page's
findings block, clearing, masking and re-checking from the page and the API, with the service
functions' permissions, the level-2 gate's message, and no raw number in any answer.

The raw numbers are planted in the body of real items; every page and API answer is a real request
through the FastAPI app (starlette's TestClient) over the store fixture (SQLite and PostgreSQL).
"""

from __future__ import annotations

import html
import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from publisher import accounts
from publisher.models import ItemStatus, ItemVersion, PrivacyFinding
from publisher.pipeline import workflow
from tests.privacy.makers import make_card, make_id, make_mobile
from tests.web.conftest import make_item

RNG = random.Random(1212)
MOBILE = make_mobile(RNG)
ID = make_id(RNG)
BODY = f"联系人：张老师，手机 {MOBILE}\n\n获奖学生身份证号 {ID}\n"
MASKED_MOBILE = MOBILE[:3] + "****" + MOBILE[-4:]
MASKED_ID = ID[:4] + "*" * 10 + ID[-4:]
FINDING_KEYS = ["no", "kind", "where", "masked", "rule", "decision", "reason", "decided_by", "decided_at"]


def _token(app: Any, name: str) -> dict[str, str]:
    with app.session() as s:
        return {"Authorization": f"Bearer {accounts.create_token(s, user=workflow.get_user(s, name), name='t')[0]}"}


def _findings(app: Any, item_id: int, version: int | None = None) -> list[PrivacyFinding]:
    with app.session() as s:
        return workflow.findings_of(s, workflow.get_item(s, item_id), version)


def _item(app: Any, item_id: int) -> Any:
    with app.session() as s:
        return workflow.get_item(s, item_id)


def _section(page: str, ident: str) -> str:
    m = re.search(rf'<section[^>]*id="{ident}".*?</section>', page, re.S)
    assert m, f"no section #{ident}"
    return m.group(0)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# ------------------------------------------------------------------------------ seeing the findings
def test_the_author_sees_the_findings_masked_after_saving_on_the_compose_page(app, client, login) -> None:
    csrf = login(client, "ed")
    r = client.post(
        "/items/new",
        data={
            "csrf_token": csrf,
            "title": "关于2026年国家助学金评审结果的公示",
            "body_markdown": BODY,
            "category": "公告公示",
            "department": "校长办公室",
            "channels": ["mem"],
            "when": "none",
            "action": "draft",
        },
    )
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    block = _text(_section(page.text, "privacy"))
    assert "隐私/保密检查" in block and "2 项未处理" in block
    assert "手机号" in block and "mobile number" in block and "身份证号" in block and "ID number" in block
    assert MASKED_MOBILE in block and MASKED_ID in block and "body:1" in block and "body:3" in block
    assert "未处理" in block
    assert MOBILE not in page.text and ID not in page.text  # the preview is masked too
    # the author may neither clear (no form) nor is the approval theirs; masking is offered
    assert "/privacy/1/clear" not in page.text and "/mask" in page.text
    english = _text(_section(client.get(r.headers["location"] + "?lang=en").text, "privacy"))
    assert "Privacy check" in english and "2 unresolved" in english and "Unresolved" in english
    assert "mobile number" in english and "手机号" in english  # both names of the kind, whatever the language


def test_the_api_lists_findings_with_decisions(app, client) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    sec = _token(app, "sec")
    r = client.get(f"/api/items/{item_id}/privacy", headers=_token(app, "ed"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert list(data) == ["item_id", "version", "checked", "findings"]
    assert (data["item_id"], data["version"], data["checked"]) == (item_id, 1, True)
    assert [list(f) for f in data["findings"]] == [FINDING_KEYS, FINDING_KEYS]
    assert [(f["no"], f["kind"], f["masked"], f["decision"]) for f in data["findings"]] == [
        (1, "mobile", MASKED_MOBILE, None),
        (2, "id_card", MASKED_ID, None),
    ]
    r = client.post(f"/api/items/{item_id}/privacy/1/clear", json={"reason": "联系人手机号，本人同意公开"}, headers=sec)
    assert r.status_code == 200, r.text
    one = r.json()["findings"][0]
    assert (one["decision"], one["reason"], one["decided_by"]) == ("cleared", "联系人手机号，本人同意公开", "sec")
    assert one["decided_at"].endswith(("+00:00", "Z"))  # aware, UTC
    item = client.get(f"/api/items/{item_id}", headers=sec).json()
    assert item["privacy_unresolved"] == 1
    assert [i["privacy_unresolved"] for i in client.get("/api/items", headers=sec).json() if i["id"] == item_id] == [1]
    # an earlier version that does not exist yet is a 404; version 1 is the current one
    assert client.get(f"/api/items/{item_id}/privacy?version=9", headers=sec).status_code == 404
    assert client.get(f"/api/items/{item_id}/privacy?version=1", headers=sec).json()["version"] == 1
    # another department's editor does not see the item at all
    assert client.get(f"/api/items/{item_id}/privacy", headers=_token(app, "ed2")).status_code == 404


# ----------------------------------------------------------------------------------- clearing
@pytest.mark.parametrize(
    ("who", "code"),
    [("ed", 403), ("head", 403), ("ed2", 404), ("viewer", 403), ("sec", 303), ("admin", 303)],
)
def test_who_may_clear_from_the_page(app, client, login, who: str, code: int) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    csrf = login(client, who)
    r = client.post(
        f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": "联系人手机号，本人同意公开"}
    )
    assert r.status_code == code, r.text
    decision = _findings(app, item_id)[0].decision
    assert decision == ("cleared" if code == 303 else None)
    if who in ("ed", "head"):  # the service's refusal, on the item page, in Chinese with the English
        block = _text(_section(r.text, "privacy"))
        assert "只有保密审查员或办公室管理员可以清除" in block
        assert "only the confidentiality reviewer (保密审查) or an admin clears a finding" in block


@pytest.mark.parametrize(("who", "code"), [("ed", 403), ("head", 403), ("viewer", 403), ("sec", 200)])
def test_who_may_clear_through_the_api(app, client, who: str, code: int) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    r = client.post(f"/api/items/{item_id}/privacy/2/clear", json={"reason": "已核实"}, headers=_token(app, who))
    assert r.status_code == code, r.text
    assert (_findings(app, item_id)[1].decision == "cleared") == (code == 200)


@pytest.mark.parametrize(
    ("reason", "message", "zh"),
    [
        ("", "needs a written reason", "清除须写明理由"),
        ("   ", "needs a written reason", "清除须写明理由"),
        (
            f"本人同意公开 {MOBILE}",
            "the reason contains an ID, mobile or card number",
            "理由中含有身份证号、手机号或银行卡号",
        ),
    ],
)
def test_a_clearing_needs_a_reason_without_a_number(app, client, login, reason: str, message: str, zh: str) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    csrf = login(client, "sec")
    r = client.post(f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": reason})
    assert r.status_code == 422
    block = _text(_section(r.text, "privacy"))
    assert zh in block and message in block
    assert MOBILE not in r.text  # the refused reason is not echoed back
    r = client.post(f"/api/items/{item_id}/privacy/1/clear", json={"reason": reason}, headers=_token(app, "sec"))
    assert r.status_code == 422 and message in r.json()["detail"] and MOBILE not in r.text
    r = client.post(f"/api/items/{item_id}/privacy/1/clear", json={}, headers=_token(app, "sec"))
    assert r.status_code == 422 and "needs a written reason" in r.json()["detail"]
    assert [f.decision for f in _findings(app, item_id)] == [None, None]


def test_an_action_without_the_csrf_token_is_refused(app, client, login) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    login(client, "sec")
    for path in (f"/items/{item_id}/privacy/1/clear", f"/items/{item_id}/mask", f"/items/{item_id}/privacy/recheck"):
        r = client.post(path, data={"reason": "本人同意公开"})
        assert r.status_code == 403, path
    assert [f.decision for f in _findings(app, item_id)] == [None, None] and _item(app, item_id).version == 1


def test_a_finding_that_does_not_exist_or_is_decided_says_so(app, client, login) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    csrf = login(client, "sec")
    r = client.post(f"/items/{item_id}/privacy/7/clear", data={"csrf_token": csrf, "reason": "已核实"})
    assert r.status_code == 404 and "没有第 7 项" in _text(r.text)
    assert (
        client.post(f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": "已核实"}).status_code
        == 303
    )
    r = client.post(f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": "再次"})
    assert r.status_code == 403 and "已由 sec 处理" in _text(r.text)


# ------------------------------------------------------------------------------- the level-2 gate
def test_the_second_approval_is_refused_until_each_finding_is_resolved(app, client, login) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    csrf = login(client, "sec")
    queue = _text(client.get("/review").text)
    assert "隐私/保密检查：2 项未处理" in queue  # the 保密审查 queue says which items wait for decisions
    page = client.get(f"/items/{item_id}").text
    refused = _text(re.search(r'<p class="error approve-refused".*?</p>', page, re.S).group(0))
    assert "现在不能通过" in refused and "2 项隐私/保密检查发现尚未处理（第 1, 2 项）" in refused
    r = client.post(f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 403 and "尚未处理" in _text(r.text)
    assert _item(app, item_id).status == ItemStatus.DEPT_APPROVED

    assert (
        client.post(
            f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": "联系人，本人同意"}
        ).status_code
        == 303
    )
    page = client.get(f"/items/{item_id}").text
    assert "1 项隐私/保密检查发现尚未处理（第 2 项）" in _text(page)
    r = client.post(f"/api/items/{item_id}/review", json={"approve": True}, headers=_token(app, "sec"))
    assert r.status_code == 403 and "no. 2" in r.json()["detail"]

    assert (
        client.post(
            f"/items/{item_id}/privacy/2/clear", data={"csrf_token": csrf, "reason": "本人同意公开"}
        ).status_code
        == 303
    )
    page = client.get(f"/items/{item_id}").text
    assert "approve-refused" not in page and "每一项都已处理" in _text(page)
    assert "项未处理" not in _text(client.get("/review").text)
    assert client.post(f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "approve"}).status_code == 303
    assert _item(app, item_id).status == ItemStatus.APPROVED


# ------------------------------------------------------------------------------------- masking
def test_masking_from_the_page_makes_a_new_version_that_goes_back_to_review(app, client, login) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/mask", data={"csrf_token": csrf})
    assert r.status_code == 200, r.text
    assert MOBILE not in r.text and ID not in r.text
    block = _section(r.text, "privacy")
    diff = _text(re.search(r'<pre class="diff">.*?</pre>', block, re.S).group(0))
    assert "[mobile]" in diff and "[id_card]" in diff and MASKED_MOBILE in diff and MASKED_ID in diff
    assert "已脱敏：第 1 版 → 第 2 版，2 项已遮蔽" in _text(block)
    assert "未发现问题" in _text(block)  # the new version, checked afresh, holds no number
    item = _item(app, item_id)
    assert (item.version, item.status) == (2, ItemStatus.SUBMITTED)
    assert [f.decision for f in _findings(app, item_id, 1)] == ["masked", "masked"]
    # back to the first review: the department head sees it, and the diff since the approval has no number
    login(client, "head")
    page = client.get(f"/items/{item_id}").text
    assert "批准后又被修改" in page and MOBILE not in page and ID not in page and "[mobile]" in page
    # nothing left to mask: the service says so on the page
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/mask", data={"csrf_token": csrf})
    assert r.status_code == 422 and "没有可遮蔽的内容" in _text(r.text)


@pytest.mark.parametrize(
    ("who", "code"), [("ed", 200), ("head", 200), ("sec", 200), ("admin", 200), ("ed2", 404), ("viewer", 403)]
)
def test_who_may_mask_through_the_api(app, client, who: str, code: int) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    r = client.post(f"/api/items/{item_id}/mask", headers=_token(app, who))
    assert r.status_code == code, r.text
    if code != 200:
        assert _item(app, item_id).version == 1
        return
    data = r.json()
    assert list(data) == ["item", "diff", "cleaned", "masked_findings", "privacy"]
    assert data["item"]["version"] == 2 and data["item"]["status"] == "submitted"
    assert data["item"]["privacy_unresolved"] == 0 and data["masked_findings"] == 2
    assert data["privacy"] == {"item_id": item_id, "version": 2, "checked": True, "findings": []}
    assert "[mobile]" in data["diff"] and MOBILE not in r.text and ID not in r.text
    # whoever masked made the version, so may not review it
    if who == "sec":
        with app.session() as s:
            workflow.review(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "head"), approve=True)
        r = client.post(f"/api/items/{item_id}/review", json={"approve": True}, headers=_token(app, "sec"))
        assert r.status_code == 403 and "edited version 2" in r.json()["detail"]


# ------------------------------------------------------------------------------------ re-checking
def _as_if_stored_before_the_check(app: Any, item_id: int) -> None:
    with app.session() as s:
        for f in s.exec(select(PrivacyFinding).where(PrivacyFinding.item_id == item_id)):
            s.delete(f)
        for v in s.exec(select(ItemVersion).where(ItemVersion.item_id == item_id)):
            v.privacy_checked_at = None
            s.add(v)


def test_a_version_stored_before_the_check_is_rechecked_from_the_page(app, client, login) -> None:
    item_id = make_item(app, body=BODY, stage="dept_approved")
    _as_if_stored_before_the_check(app, item_id)
    csrf = login(client, "sec")
    page = client.get(f"/items/{item_id}").text
    assert "尚未检查" in _text(_section(page, "privacy")) and "/privacy/recheck" in page
    assert "请先“重新检查”" in _text(page)  # the gate's refusal beside the approve button
    api = client.get(f"/api/items/{item_id}/privacy", headers=_token(app, "sec")).json()
    assert (api["checked"], api["findings"]) == (False, [])
    assert client.post(f"/items/{item_id}/privacy/recheck", data={"csrf_token": csrf}).status_code == 303
    assert [(f.number, f.kind, f.masked) for f in _findings(app, item_id)] == [
        (1, "mobile", MASKED_MOBILE),
        (2, "id_card", MASKED_ID),
    ]
    r = client.post(f"/items/{item_id}/privacy/recheck", data={"csrf_token": csrf})
    assert r.status_code == 403 and "保存时已经检查过" in _text(r.text)
    r = client.post(f"/api/items/{item_id}/privacy/recheck", headers=_token(app, "sec"))
    assert r.status_code == 403 and "was checked when it was made" in r.json()["detail"]


def test_recheck_through_the_api(app, client) -> None:
    item_id = make_item(app, body=BODY, stage="submitted")
    _as_if_stored_before_the_check(app, item_id)
    assert client.post(f"/api/items/{item_id}/privacy/recheck", headers=_token(app, "viewer")).status_code == 403
    r = client.post(f"/api/items/{item_id}/privacy/recheck", headers=_token(app, "ed"))
    assert r.status_code == 200, r.text
    assert r.json()["checked"] is True and [f["masked"] for f in r.json()["findings"]] == [MASKED_MOBILE, MASKED_ID]


# --------------------------------------------------------------------------- no raw number anywhere
NUMBERS = st.sampled_from(["mobile", "id_card", "bank_card"]).flatmap(
    lambda kind: st.integers(0, 2**32).map(lambda seed: (kind, _planted(kind, seed)))
)


def _planted(kind: str, seed: int) -> str:
    rng = random.Random(seed)
    return {"mobile": make_mobile, "id_card": make_id, "bank_card": make_card}[kind](rng)


def _pages(client: Any, item_id: int, headers: dict[str, str]) -> dict[str, str]:
    """Every page and API answer that shows the item other than its text for editing."""
    out = {p: client.get(p).text for p in (f"/items/{item_id}", "/items", "/review", f"/items?q={item_id}")}
    for p in (
        f"/api/items/{item_id}/privacy",
        f"/api/items/{item_id}/privacy?version=1",
        f"/api/items/{item_id}/deliveries",
    ):
        out[p] = client.get(p, headers=headers).text
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(planted=st.lists(NUMBERS, min_size=1, max_size=3, unique_by=lambda x: x[1]))
def test_no_answer_holds_a_planted_number(app, client, login, planted: list[tuple[str, str]]) -> None:
    body = "获奖名单公示\n\n" + "\n\n".join(f"第{i}位：{n}" for i, (_, n) in enumerate(planted, 1)) + "\n"
    raw = [n for _, n in planted]
    sec = _token(app, "sec")
    created = client.post(
        "/api/items",
        json={"title": "国家奖学金公示", "body_markdown": body, "category": "公告公示", "channels": ["mem"]},
        headers=_token(app, "ed"),
    )
    assert created.status_code == 201
    item_id = created.json()["id"]
    answers = {"create (privacy_unresolved)": str(created.json()["privacy_unresolved"])}
    with app.session() as s:
        workflow.submit(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "head"), approve=True)
    assert len(_findings(app, item_id)) == len(planted)
    csrf = login(client, "sec")
    answers |= _pages(client, item_id, sec)
    answers["clear refused"] = client.post(
        f"/items/{item_id}/privacy/1/clear", data={"csrf_token": csrf, "reason": f"见 {raw[0]}"}
    ).text
    answers["approve refused"] = client.post(
        f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "approve"}
    ).text
    answers["api clear"] = client.post(
        f"/api/items/{item_id}/privacy/1/clear", json={"reason": "本人同意公开"}, headers=sec
    ).text
    masked = client.post(f"/items/{item_id}/mask", data={"csrf_token": csrf})
    assert masked.status_code == 200, masked.text
    answers["mask page"] = masked.text
    answers |= {f"after mask {k}": v for k, v in _pages(client, item_id, sec).items()}
    answers["api item after mask"] = client.get(f"/api/items/{item_id}", headers=sec).text
    login(client, "head")
    answers |= {f"head {k}": v for k, v in _pages(client, item_id, sec).items()}
    for where, text in answers.items():
        for n in raw:
            assert n not in text, f"{where} holds a planted number"


def test_masking_from_the_page_masks_a_channels_wording(app, client, login) -> None:
    from publisher.pipeline import content

    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        fields = {
            "category": "公告公示",
            "channels": ["mem"],
            "overrides": {"mem": {"title": f"值班手机 {MOBILE}", "body": f"学生甲\n\n身份证号 {ID}"}},
        }
        draft = content.ItemDraft(title="关于寒假值班的通知", body_markdown="正文内容", fields=fields)
        item_id = workflow.create_item(app.ctx, s, author=ed, draft=draft).id
    assert sorted(f.where for f in _findings(app, item_id)) == ["mem.body:3", "mem.title"]
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/mask", data={"csrf_token": csrf})
    assert r.status_code == 200, r.text
    assert MOBILE not in r.text and ID not in r.text
    block = _section(r.text, "privacy")
    diff = _text(re.search(r'<pre class="diff">.*?</pre>', block, re.S).group(0))
    assert "mem.title" in diff and "mem.body" in diff and MASKED_MOBILE in diff and MASKED_ID in diff
    assert "未发现问题" in _text(block)
    item = _item(app, item_id)
    assert item.overrides["mem"]["title"] == f"值班手机 {MASKED_MOBILE}"
    assert (item.title, item.body_markdown) == ("关于寒假值班的通知", "正文内容")
    assert [f.decision for f in _findings(app, item_id, 1)] == ["masked", "masked"]
