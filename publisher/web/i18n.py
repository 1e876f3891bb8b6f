"""Chinese first, English second: a small message catalogue and locale-aware formatting.

A dict rather than gettext, so there is no catalogue to compile and a missing key shows itself
(the key is printed) instead of failing a page.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

LANGS = ("zh", "en")

#: key -> (简体中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("信息公开发布平台", "Disclosure publisher"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "throttled": ("失败次数过多，请稍后再试", "Too many failed log-ins: wait a few minutes"),
    "items": ("稿件", "Items"),
    "compose": ("撰写", "Compose"),
    "edit": ("修改", "Edit"),
    "review": ("审核", "Review"),
    "calendar": ("日历", "Calendar"),
    "dashboard": ("统计", "Dashboard"),
    "tokens": ("API 令牌", "API tokens"),
    "users": ("用户", "Users"),
    "channels": ("渠道", "Channels"),
    "title": ("标题", "Title"),
    "body": ("正文（Markdown）", "Body (Markdown)"),
    "summary": ("摘要", "Summary"),
    "category": ("类别", "Category"),
    "department": ("部门", "Department"),
    "checklist_item": ("公开事项（1-50）", "Checklist item (1-50)"),
    "checklist_hint": ("输入编号或名称搜索", "type a number or a name to search"),
    "target_channels": ("发布渠道", "Target channels"),
    "publish_at": ("发布时间", "Publish time"),
    "next_slot": ("各渠道的下一个发布时段", "Next free slot of each channel"),
    "image": ("插入图片", "Insert image"),
    "save_draft": ("保存草稿", "Save draft"),
    "save_submit": ("保存并提交审核", "Save and submit for review"),
    "submit": ("提交审核", "Submit for review"),
    "preview": ("预览", "Preview"),
    "problems": ("不符合渠道要求", "The channel cannot take it"),
    "no_problems": ("符合渠道要求", "Fits the channel"),
    "status": ("状态", "Status"),
    "author": ("作者", "Author"),
    "version": ("版本", "Version"),
    "updated": ("更新时间", "Updated"),
    "actions": ("操作", "Actions"),
    "approve": ("通过", "Approve"),
    "reject": ("退回", "Reject"),
    "reason": ("理由", "Reason"),
    "reject_reason_needed": ("退回需填写理由", "A rejection needs a reason"),
    "level1": ("一审：部门负责人", "First review: department head"),
    "level2": ("二审：保密审查", "Second review: confidentiality"),
    "queue_empty": ("没有待审稿件", "Nothing waits for review"),
    "edited_badge": ("批准后有修改", "edited after approval"),
    "changed_since": ("批准后又被修改：与已批准版本的差异", "Edited after approval: changes since the approved version"),
    "deliveries": ("各渠道发布情况", "Delivery on each channel"),
    "channel": ("渠道", "Channel"),
    "attempts": ("尝试", "Attempts"),
    "error": ("错误", "Error"),
    "url": ("链接", "URL"),
    "retry": ("重试此渠道", "Retry this channel"),
    "withdraw": ("撤回", "Withdraw"),
    "withdraw_confirm": ("确定从所有渠道撤回？", "Withdraw from every channel?"),
    "schedule": ("排期", "Schedule"),
    "reschedule": ("改期", "Reschedule"),
    "week": ("周", "Week"),
    "month": ("月", "Month"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "today": ("今天", "Today"),
    "ical": ("订阅日历（iCalendar）", "Subscribe (iCalendar)"),
    "ical_hint": ("在日历应用中订阅：需要一个 API 令牌", "Subscribe in a calendar app: needs an API token"),
    "period": ("统计期间", "Period"),
    "report_period": ("本报告期", "Report period"),
    "this_week": ("本周", "This week"),
    "custom": ("自定义", "Custom range"),
    "from": ("从", "From"),
    "to": ("至", "To"),
    "show": ("查看", "Show"),
    "published": ("已发布", "Published"),
    "failed": ("失败", "Failed"),
    "pending": ("待发布", "Pending"),
    "items_count": ("稿件数", "Items"),
    "by_category": ("按类别", "By category"),
    "by_department": ("按部门", "By department"),
    "by_month": ("按月份", "By month"),
    "engagement": ("互动数据", "Engagement"),
    "metric": ("指标", "Metric"),
    "value": ("数值", "Value"),
    "recent_failures": ("最近的失败", "Recent failures"),
    "csv": ("导出 CSV", "Export CSV"),
    "none": ("无", "None"),
    "create": ("创建", "Create"),
    "revoke": ("吊销", "Revoke"),
    "revoked": ("已吊销", "revoked"),
    "token_name": ("令牌名称（用途）", "Token name (what uses it)"),
    "token_shown_once": ("请立即复制，令牌只显示这一次：", "Copy it now, it is shown only once:"),
    "role": ("角色", "Role"),
    "set_password": ("设置密码", "Set password"),
    "type": ("类型", "Type"),
    "enabled": ("启用", "Enabled"),
    "paused": ("暂停", "Paused"),
    "posting_schedule": ("发布时段", "Posting schedule"),
    "anytime": ("随时", "any time"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "forbidden": ("无权进行此操作", "You may not do this"),
    "not_found": ("未找到", "Not found"),
    "invalid": ("输入有误", "Invalid input"),
    "back": ("返回", "Back"),
    "versions": ("版本记录", "Versions"),
    "reviews": ("审核记录", "Reviews"),
    "return_reason": ("退回理由", "Returned because"),
    "new_item": ("新建稿件", "New item"),
    "all": ("全部", "All"),
    "lang_switch": ("English", "中文"),
    "time_zone": ("时区", "Time zone"),
    "chart_published": ("各渠道每月发布量", "Published per channel and month"),
    "display_name": ("显示名称", "Display name"),
    "add_user": ("添加用户", "Add user"),
    "mon": ("一", "Mon"), "tue": ("二", "Tue"), "wed": ("三", "Wed"), "thu": ("四", "Thu"),
    "fri": ("五", "Fri"), "sat": ("六", "Sat"), "sun": ("日", "Sun"),
    # item states
    "st_draft": ("草稿", "Draft"),
    "st_submitted": ("待一审", "Awaiting first review"),
    "st_dept_approved": ("待保密审查", "Awaiting confidentiality review"),
    "st_approved": ("已通过，未排期", "Approved, not scheduled"),
    "st_scheduled": ("已排期", "Scheduled"),
    "st_published": ("已发布", "Published"),
    "st_failed": ("发布失败", "Failed"),
    "st_withdrawn": ("已撤回", "Withdrawn"),
    # delivery states
    "st_pending": ("等待发布", "Pending"),
    "st_claimed": ("发布中", "In flight"),
    "st_waiting": ("等待完成", "Waiting"),
    "st_done": ("完成", "Done"),
    "st_cancelled": ("已取消", "Cancelled"),
    # what one attempt came to, and what a delivery owes (shown beside the delivery states)
    "att_done": ("完成", "done"),
    "att_waiting": ("等待完成", "waiting"),
    "att_transient": ("暂时失败，将重试", "transient error, will retry"),
    "att_permanent": ("失败", "failed"),
    "att_quota": ("超出配额，等待重置", "quota reached, waiting"),
    "att_ambiguous": ("结果不明，核对后再发", "outcome unknown, reconciling"),
    "att_error": ("出错", "error"),
    "op_publish": ("发布", "publish"),
    "op_update": ("更新", "update"),
    "op_withdraw": ("撤回", "withdraw"),
    "req_withdraw": ("正在发送；已登记撤回：发送结束后若已发出即撤下，否则取消",
                     "being sent; withdrawal recorded: taken down when the call returns if it went out, "
                     "else cancelled"),
    "req_cancel": ("正在发送；内容已修改：已发出的保留（新版本审核后更新），未发出的取消",
                   "being sent; the item was edited: what went out stays (updated after the new approval), "
                   "the rest is cancelled"),
    "req_requeue": ("正在发送；新版本已审核通过：发送结束后即发送新版本",
                    "being sent; the new version is approved: it is sent when the call returns"),
    "channel_removed": ("已从目标渠道中移除", "removed from the item's channels"),
    # roles
    "role_editor": ("编辑", "Editor"),
    "role_department_head": ("部门负责人", "Department head"),
    "role_confidentiality_reviewer": ("保密审查员", "Confidentiality reviewer"),
    "role_admin": ("办公室管理员", "Office admin"),
    "role_viewer": ("查看者", "Viewer"),
}


def pick_lang(query: str | None, cookie: str | None) -> str:
    for v in (query, cookie):
        if v in LANGS:
            return v  # type: ignore[return-value]
    return "zh"


class Translator:
    def __init__(self, lang: str, tz: ZoneInfo) -> None:
        self.lang = lang if lang in LANGS else "zh"
        self.tz = tz
        self._i = LANGS.index(self.lang)

    def __call__(self, key: str) -> str:
        msg = MESSAGES.get(key)
        return msg[self._i] if msg else key

    def status(self, value: str) -> str:
        return self(f"st_{value}")

    def role(self, value: str) -> str:
        return self(f"role_{value}")

    def outcome(self, value: str) -> str:
        return MESSAGES[f"att_{value}"][self._i] if f"att_{value}" in MESSAGES else value

    def op(self, value: str) -> str:
        return MESSAGES[f"op_{value}"][self._i] if f"op_{value}" in MESSAGES else value

    def dt(self, value: datetime | None, *, date_only: bool = False) -> str:
        """A time in the viewer's zone: 2026年11月26日 08:00 / 26 Nov 2026 08:00."""
        if value is None:
            return "—"
        v = value.astimezone(self.tz)
        d = f"{v.year}年{v.month}月{v.day}日" if self.lang == "zh" else v.strftime("%d %b %Y").lstrip("0")
        return d if date_only else f"{d} {v:%H:%M}"

    def num(self, value: int | float | None) -> str:
        if value is None:
            return "—"
        return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
