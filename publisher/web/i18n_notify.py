"""The words of the notification page (通知设置, /notify; docs/notify.md), kept apart from
publisher.web.i18n as the register and record pages' words are; it merges these in."""

from __future__ import annotations

#: key -> (简体中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "notify": ("通知设置", "Notifications"),
    "notify_hint": ("有待办（待审核、发布失败等）时如何通知您。", "How you are told when work waits."),
    "notify_none_yet": ("尚未设置：目前不会通知。", "Not chosen yet: you are not told."),
    "notify_saved": ("已保存。", "Saved."),
    "notify_whose": ("用户", "Person"),
    "notify_transport": ("通知方式", "Transport"),
    "notify_address": ("地址", "Address"),
    "notify_address_hint": (
        "电子邮件地址，或企业微信 / 钉钉 userid。",
        "An e-mail address, or a 企业微信 / 钉钉 userid.",
    ),
    "notify_mode": ("发送时间", "When"),
    "notify_immediate": ("立即发送", "At once"),
    "notify_digest": ("每日汇总（{h}:00）", "A daily digest ({h}:00)"),
    "notify_quiet": ("免打扰时段（本地时间）", "Quiet hours (local time)"),
    "notify_quiet_hint": ("此时段的通知推迟到结束时发送；都留空则不设。", "Held until they end; both empty: none."),
    "transport_email": ("电子邮件", "E-mail"),
    "transport_wecom": ("企业微信", "WeCom (企业微信)"),
    "transport_dingtalk": ("钉钉", "DingTalk (钉钉)"),
    "transport_none": ("不通知", "Not told"),
}

#: (English pattern, 中文) for the refusals of publisher.pipeline.workflow.outbox.set_pref
ERRORS: list[tuple[str, str]] = [
    (r"transport '(?P<t>[^']*)' needs --address .*", "{t} 需要填写地址（电子邮件地址，或企业微信 / 钉钉 userid）"),
    (
        r"quiet hours: '(?P<v>[^']*)' is not a local time HH:MM.*",
        "免打扰时段：“{v}”不是 时:分 格式的时间，开始和结束都要填",
    ),
    (r"quiet hours '.*': the start and the end are the same time", "免打扰时段的开始和结束不能相同"),
]
