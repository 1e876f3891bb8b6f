"""Chinese first, English second: a small message catalogue and locale-aware formatting.

A dict rather than gettext, so there is no catalogue to compile and a missing key shows itself
(the key is printed) instead of failing a page.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.web import i18n_notify, i18n_registers
from publisher.web.i18n_records import RECORDS_ERRORS, RECORDS_MESSAGES

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
    "local_off": (
        "本系统只允许管理员使用本地密码，请使用统一身份认证登录",
        "Local passwords are for admins only here: sign in with the campus account",
    ),
    "sso_refused": ("统一身份认证登录被拒绝", "The campus sign-in was refused"),
    "sso_or": ("或使用本地账号和密码", "or with a local user name and password"),
    "sso_admins_only": ("本地密码仅供管理员使用", "Local passwords: admins only"),
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
    "checklist": ("公开事项", "Checklist item"),
    "checklist_hint": ("输入编号或名称搜索", "type a number or a name to search"),
    "target_channels": ("发布渠道", "Target channels"),
    "publish_at": ("发布时间", "Publish time"),
    "at_time": ("指定时间", "At a set time"),
    "catalogue": ("信息公开目录", "Disclosure catalogue (信息公开目录)"),
    "catalogue_hint": (
        "索引号在稿件排期发布时自动生成；关联稿件填写稿件编号，多个用逗号分隔",
        "the 索引号 is given when the item is queued; related items by id, several separated by commas",
    ),
    "index_no": ("索引号", "Index number (索引号)"),
    "index_no_later": ("（排期发布时生成）", "(given when queued to go out)"),
    "doc_number": ("发文字号", "Document number (发文字号)"),
    "written_on": ("成文日期", "Written on (成文日期)"),
    "topic": ("主题分类", "Topic (主题分类)"),
    "disclosure_mode": ("公开方式", "Disclosure (公开方式)"),
    "disclosure_scope": ("公开范围", "Scope (公开范围)"),
    "validity": ("有效性", "Validity (有效性)"),
    "replaced_by": ("替代稿件编号", "Replaced by item"),
    "interprets": ("解读的稿件编号", "Interprets items"),
    "revises": ("修订的稿件编号", "Revises items"),
    "awards": ("对应招标公告编号", "Awards tender items"),
    "related": ("相关稿件", "Related items"),
    "display_period": ("公示期", "Display period (公示期)"),
    "display_ends": ("至", "ends"),
    "display_planned": ("按计划发布时间推算", "planned from the publish time"),
    "display_ended_at": ("已结束，撤下于", "ended, taken down at"),
    "display_unknown": (
        "无法计算截止时间（节假日日历未覆盖该年度），信息保持发布",
        "the end cannot be computed (the holiday calendar lacks the year); the item stays up",
    ),
    "display_from_live": ("自首次发布起计算", "counted from when it goes live"),
    "display_working_days": ("个工作日", "working days"),
    "display_until": ("截止时间", "ends at"),
    "display_days_label": ("工作日数（自首次发布起）", "Working days (from going live)"),
    "display_hint": (
        "（二选一；到期自动撤下。未填写时按类别默认值）",
        "(one of the two; taken down when it ends. Empty: the category's default)",
    ),
    "st_display_end": ("公示期截止", "公示期 ends"),
    "st_display_ended": ("公示期已结束", "公示期 ended"),
    "next_slot": ("各渠道的下一个发布时段", "Next free slot of each channel"),
    "image": ("插入图片", "Insert image"),
    "save_draft": ("保存草稿", "Save draft"),
    "save_submit": ("保存并提交审核", "Save and submit for review"),
    "submit": ("提交审核", "Submit for review"),
    "preview": ("预览", "Preview"),
    "preview_cut": (
        "预览只显示正文的前 {n} KB（全文 {m} KB），各渠道的检查也只针对这一部分；提交审核时检查全文。",
        "The preview shows the first {n} KB of the body ({m} KB in all), and the channels' checks "
        "cover that part only; submitting checks the whole.",
    ),
    "wording": ("渠道专用文字", "Wording for one channel"),
    "wording_hint": (
        "（留空则用上面的标题、摘要、正文和封面；随稿件一起审核）",
        "(empty: the item's own; reviewed with it)",
    ),
    "wording_cover": ("封面", "Cover"),
    "wording_cover_hint": (
        "从本条目的图片中选择，或上传一张；只用于该渠道",
        "pick one of the item's images, or upload one; for this channel only",
    ),
    "wording_cover_none": ("不另设（用条目自己的封面）", "None of its own (the item's cover)"),
    "wording_cover_upload": ("上传封面图片", "Upload a cover image"),
    "wording_cover_alt": (
        "封面替代文本（图片内容说明，有封面时必填）",
        "Cover alt text (what the picture shows; required with a cover)",
    ),
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
    "changed_since": (
        "批准后又被修改：与已批准版本的差异",
        "Edited after approval: changes since the approved version",
    ),
    "deliveries": ("各渠道发布情况", "Delivery on each channel"),
    "channel": ("渠道", "Channel"),
    "attempts": ("尝试", "Attempts"),
    "error": ("错误", "Error"),
    "url": ("链接", "URL"),
    "retry": ("重试此渠道", "Retry this channel"),
    # 撤回 is what a Chinese user calls taking back their own submission (recall); the final
    # take-down from every channel is 撤销发布, a different action with a different name
    "recall": ("撤回审核", "Recall"),
    "recall_hint": (
        "撤回后稿件回到草稿，修改后可重新提交，需重新经过两级审核",
        "back to draft: change it and submit again; both reviews start over",
    ),
    "withdraw": ("撤销发布", "Take down"),
    "withdraw_confirm": (
        "确定从所有渠道撤下这篇稿件？撤销发布后不能恢复。",
        "Take this item down from every channel? It cannot be undone.",
    ),
    "schedule": ("排期", "Schedule"),
    "reschedule": ("改期", "Reschedule"),
    "week": ("周", "Week"),
    "month": ("月", "Month"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "today": ("今天", "Today"),
    "ical": ("订阅日历（iCalendar）", "Subscribe (iCalendar)"),
    "ical_hint": ("在日历应用中订阅：需要一个日历订阅令牌", "Subscribe in a calendar app: needs a calendar-feed token"),
    "feed_hint": (
        "订阅链接中的令牌只能读取日历，不能调用 API；重新生成后旧链接失效。",
        "The token in these links only reads the calendar, never the API; a new one ends the old links.",
    ),
    "feed_create": ("生成订阅链接", "Make feed links"),
    "feed_regenerate": ("重新生成订阅链接", "New feed links (old ones stop)"),
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
    "failures_hidden": (
        "另有 {n} 次失败属于您无权查看的稿件（其他部门），未列出；上方各表的“失败”数含这些。",
        "{n} more failures belong to items you may not see (other departments) and are not "
        "listed; the Failed counts above include them.",
    ),
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
    "not_found_detail": (
        "没有这个页面或稿件，或者它不在您可以查看的范围内（其他部门的稿件只有本部门和审核人员可见）。",
        "There is no such page or item, or it is not yours to see (an item is seen by its own "
        "department and the reviewers).",
    ),
    "invalid": ("输入有误", "Invalid input"),
    "back": ("返回", "Back"),
    "versions": ("版本记录", "Versions"),
    "audit_trail": ("操作记录", "Audit trail"),
    "audit_more": (
        "只列出最近的 {n} 条；全部记录：publisher item show {id}",
        "Only the latest {n} are listed; all of them: publisher item show {id}",
    ),
    "who": ("操作人", "Who"),
    "action": ("操作", "Action"),
    "change": ("状态变化", "Change"),
    "time": ("时间", "Time"),
    "reviews": ("审核记录", "Reviews"),
    "return_reason": ("退回理由", "Returned because"),
    "new_item": ("新建稿件", "New item"),
    "all": ("全部", "All"),
    "search": ("搜索", "Search"),
    "search_hint": (
        "标题中的字词、索引号、发文字号，或稿件编号",
        "words of the title, a 索引号 or 发文字号, or the item's number",
    ),
    "clear_search": ("清除搜索", "Clear the search"),
    "items_more": (
        "只列出最近更新的 {n} 篇；更早的稿件请按标题或编号搜索，或按状态筛选。",
        "Only the {n} most recently updated are listed; find older ones by title or number, or by status.",
    ),
    "lang_switch": ("English", "中文"),
    "time_zone": ("时区", "Time zone"),
    "skip_to_content": ("跳到主要内容", "Skip to content"),
    "large_text": ("大字模式", "Large text"),
    "chart_published": ("各渠道每月发布量", "Published per channel and month"),
    "display_name": ("显示名称", "Display name"),
    "add_user": ("添加用户", "Add user"),
    "role_source": ("角色来源", "Role from"),
    "source_admin": ("管理员设置", "set by an admin"),
    "source_directory": ("统一身份认证", "campus directory"),
    "change_role": ("修改角色/部门", "Change role / department"),
    "deactivate": ("停用", "Deactivate"),
    "deactivated": ("已停用", "Deactivated"),
    "sign_ins": ("最近登录", "Recent sign-ins"),
    "save": ("保存", "Save"),
    "when": ("时间", "When"),
    "address": ("地址", "Address"),
    "result": ("结果", "Result"),
    "sign_in_method": ("方式", "How"),
    "sign_in_ok": ("成功", "signed in"),
    "sign_in_refused": ("被拒绝", "refused"),
    "mon": ("一", "Mon"),
    "tue": ("二", "Tue"),
    "wed": ("三", "Wed"),
    "thu": ("四", "Thu"),
    "fri": ("五", "Fri"),
    "sat": ("六", "Sat"),
    "sun": ("日", "Sun"),
    # the privacy check's block of the item page (隐私/保密检查)
    "privacy_check": ("隐私/保密检查", "Privacy check"),
    "p_no": ("序号", "No."),
    "p_kind": ("类别", "Kind"),
    "p_where": ("位置", "Where"),
    "p_masked": ("内容（已遮蔽）", "Value (masked)"),
    "p_rule": ("规则", "Rule"),
    "p_decision": ("处理", "Decision"),
    "p_cleared": ("已清除", "Cleared"),
    "p_masked_decision": ("已脱敏", "Masked"),
    "p_open": ("未处理", "Unresolved"),
    "p_clear": ("清除", "Clear"),
    "p_clear_reason": ("清除理由，第", "Reason for clearing no."),
    "p_reason_hint": (
        "清除理由（必填，不要写出号码），如：联系人手机号，本人同意公开",
        "Why it may be published (required, without the number), e.g. the contact's own number, with consent",
    ),
    "p_mask": ("一键脱敏", "Mask"),
    "p_mask_hint": (
        "生成新版本：正文中的身份证号、手机号、银行卡号被遮蔽，有问题的 DOCX/XLSX 附件换成清理后的副本；"
        "新版本需重新经过两级审核，脱敏人不能审核它。",
        "Makes a new version: ID, mobile and card numbers masked in the text, DOCX/XLSX attachments with a "
        "finding replaced by cleaned copies; it goes through both reviews again, not by whoever masked it.",
    ),
    "p_mask_confirm": (
        "生成遮蔽号码后的新版本？新版本需重新经过两级审核。",
        "Make a new version with the numbers masked? It goes through both reviews again.",
    ),
    "p_masked_result": (
        "已脱敏：第 {a} 版 → 第 {b} 版，{n} 项已遮蔽。新版本已重新检查（见下表），需重新经过两级审核。",
        "Masked: version {a} → {b}, {n} findings masked. The new version was checked again (below) and "
        "goes through both reviews again.",
    ),
    "p_diff": (
        "正文的修改（删去的号码显示为 [mobile] 等）",
        "Changes to the body (removed numbers read [mobile] etc.)",
    ),
    "p_body_same": ("正文未改变", "The body is unchanged"),
    "p_cleaned": (
        "已换成清理后的副本（发布前请打开查看）：",
        "Replaced by cleaned copies (open each before publishing):",
    ),
    "p_recheck": ("重新检查", "Re-check"),
    "p_unchecked": (
        "此版本保存于隐私/保密检查上线之前，尚未检查：保密审查通过前须先检查。",
        "This version was stored before the privacy check existed and has not been checked: "
        "the confidentiality approval waits for a check.",
    ),
    "p_unresolved_n": (
        "{n} 项未处理：保密审查通过前，须逐项清除（写明理由）或一键脱敏。",
        "{n} unresolved: before the confidentiality approval each must be cleared (with a reason) or masked.",
    ),
    "p_all_resolved": ("每一项都已处理。", "Every finding is resolved."),
    "p_none": ("未发现问题。", "No findings."),
    "p_images": (
        "图片中的文字（照片、扫描件、截图）不检查：请逐一查看每张图片。",
        "Text inside images (photos, scans, screenshots) is not checked: look at every image.",
    ),
    "p_preview_masked": (
        "预览中的身份证号、手机号、银行卡号已遮蔽显示；原文在“修改”页面。",
        "ID, mobile and card numbers are shown masked in this preview; the text as written is on the Edit page.",
    ),
    "p_open_badge": ("隐私/保密检查：{n} 项未处理", "privacy check: {n} unresolved"),
    "p_approve_refused": ("现在不能通过：", "The approval is refused now: "),
    # item states
    "st_draft": ("草稿", "Draft"),
    "st_submitted": ("待一审", "Awaiting first review"),
    "st_dept_approved": ("待保密审查", "Awaiting confidentiality review"),
    "st_approved": ("已通过，未排期", "Approved, not scheduled"),
    "st_scheduled": ("已排期", "Scheduled"),
    "st_published": ("已发布", "Published"),
    "st_failed": ("发布失败", "Failed"),
    "st_withdrawn": ("已撤销发布", "Taken down"),
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
    "op_withdraw": ("撤下", "take down"),
    "req_withdraw": (
        "正在发送；已登记撤销发布：发送结束后若已发出即撤下，否则取消",
        "being sent; withdrawal recorded: taken down when the call returns if it went out, else cancelled",
    ),
    "req_cancel": (
        "正在发送；内容已修改：已发出的保留（新版本审核后更新），未发出的取消",
        "being sent; the item was edited: what went out stays (updated after the new approval), the rest is cancelled",
    ),
    "req_requeue": (
        "正在发送；新版本已审核通过：发送结束后即发送新版本",
        "being sent; the new version is approved: it is sent when the call returns",
    ),
    "channel_removed": ("已从目标渠道中移除", "removed from the item's channels"),
    # roles
    "role_editor": ("编辑", "Editor"),
    "role_department_head": ("部门负责人", "Department head"),
    "role_confidentiality_reviewer": ("保密审查员", "Confidentiality reviewer"),
    "role_admin": ("办公室管理员", "Office admin"),
    "role_viewer": ("查看者", "Viewer"),
}
MESSAGES.update(RECORDS_MESSAGES)


#: Validation messages of the core (publisher.pipeline.workflow, the compose page) and of the channels'
#: ``validate()``, as the web UI meets them on saving, submitting, reviewing and scheduling: an English
#: pattern (matched whole) -> its Chinese. The Chinese page shows the Chinese with the English beside it
#: (the English is what the CLI, the API and the logs say, so it stays findable); an unknown message
#: shows as it is. Only the common ones are here: the CLI and the API stay English.
ERRORS: list[tuple[str, str]] = [
    # the item's fields (publisher.pipeline.workflow.items._check_fields, create_item, the compose page)
    (r"the title is empty", "标题为空"),
    (r"the title is (?P<n>[\d,]+) characters; at most (?P<m>[\d,]+)", "标题有 {n} 个字，最多 {m} 个"),
    (r"unknown category ''; one of: .*", "请选择类别"),
    (r"unknown department ''; known: .*", "请选择部门"),
    (r"unknown category '(?P<v>[^']*)'; one of: (?P<known>.*)", "没有“{v}”这个类别，可选：{known}"),
    (
        r"unknown department '(?P<v>[^']*)'; known: (?P<known>.*?) \(add it with `publisher department add NAME`\)",
        "没有“{v}”这个部门，现有：{known}（管理员可以添加部门）",
    ),
    (
        r"checklist item '(?P<v>[^']*)': pick a number from 1 to 50 from the list",
        "公开事项“{v}”：请从列表中选择 1 至 50 的一项",
    ),
    (r"checklist item '(?P<v>[^']*)' is not a number from 1 to 50", "公开事项“{v}”不是 1 至 50 的编号"),
    (r"checklist item (?P<n>\d+) is outside 1-50 \(see `publisher checklist`\)", "公开事项编号 {n} 不在 1 至 50 之内"),
    (r"an item needs at least one target channel .*", "请至少选择一个发布渠道"),
    (r"the item has no channels\b.*", "请至少选择一个发布渠道"),
    (r"the item has no category\b.*", "请选择类别"),
    (r"channel\(s\) (?P<c>.*) are disabled in settings\.toml", "渠道 {c} 已停用（见 settings.toml）"),
    (r"'(?P<v>.*)' is not a date and time \(YYYY-MM-DDTHH:MM\)", "“{v}”不是有效的日期和时间"),
    (r"publish time (?P<at>\S+) is in the past; give a future time .*", "发布时间 {at} 已经过去，请填写将来的时间"),
    (r"the body is larger than review\.max_body_bytes", "正文超过允许的长度（review.max_body_bytes）"),
    (
        r"image asset://(?P<h>\S+) is not among the images you uploaded or may see: insert it again",
        "图片 {h} 不在您上传过或可以查看的图片中，请重新插入",
    ),
    (
        r"(?P<f>.+): not a readable image; upload a JPEG, PNG, GIF or WebP",
        "{f}：不是可读取的图片，请上传 JPEG、PNG、GIF 或 WebP",
    ),
    # review, submit, schedule, retry (publisher.pipeline.workflow)
    (r"a rejection needs a reason .*", "退回需填写理由，以便作者知道要修改什么"),
    (r"decision must be approve or reject", "请选择通过或退回"),
    (r"(?P<u>\S+) wrote item (?P<id>\d+) and cannot review it", "{u} 是稿件 {id} 的作者，不能审核它"),
    (
        r"(?P<u>\S+) edited version (?P<v>\d+) of item (?P<id>\d+) and cannot review it; another person must",
        "{u} 修改了稿件 {id} 的第 {v} 版，不能审核它，须由另一人审核",
    ),
    (
        r"(?P<u>\S+) already approved item (?P<id>\d+) at the first level; a second person must",
        "{u} 已在一审通过稿件 {id}，二审须由另一人进行",
    ),
    (
        r"item (?P<id>\d+) is (?P<status>\w+); only a draft can be submitted",
        "稿件 {id} 的状态是“{status}”，只有草稿可以提交审核",
    ),
    (r"item (?P<id>\d+) is (?P<status>\w+); it can no longer be edited", "稿件 {id} 的状态是“{status}”，不能再修改"),
    (r"item (?P<id>\d+) is (?P<status>\w+); it cannot be rescheduled", "稿件 {id} 的状态是“{status}”，不能改期"),
    (
        r"item (?P<id>\d+) is (?P<status>\w+); there is nothing to review",
        "稿件 {id} 的状态是“{status}”，没有需要审核的",
    ),
    (r"item (?P<id>\d+) is already withdrawn", "稿件 {id} 已经撤销发布"),
    (
        r"item (?P<id>\d+) is (?P<status>\w+); only a submitted item waiting for review can be recalled .*",
        "稿件 {id} 的状态是“{status}”，只有待审核的稿件可以撤回（已发布的稿件请用“撤销发布”）",
    ),
    (r"(?P<u>\S+) may not recall item (?P<id>\d+) of (?P<d>.+)", "{u} 不能撤回{d}的稿件 {id}"),
    (
        r"item (?P<id>\d+) is being sent to (?P<c>.+) right now; (?P<what>\w+) again in a minute",
        "稿件 {id} 正在发送到 {c}，请一分钟后再试",
    ),
    (r"item (?P<id>\d+) lacks its two approvals.*", "稿件 {id} 尚未通过两级审核"),
    (
        r"delivery (?P<id>\d+) is (?P<status>\w+); only a failed delivery can be retried",
        "该渠道的发布状态是“{status}”，只有失败的才能重试",
    ),
    (
        r"item (?P<id>\d+) targets (?P<c>.+), no longer configured in settings\.toml: .*",
        "稿件 {id} 的发布渠道 {c} 已不在配置中，请修改稿件的发布渠道",
    ),
    (r"(?P<c>\S+): channel is no longer configured", "渠道 {c} 已不在配置中"),
    # the privacy check (publisher.pipeline.workflow.privacy, masking, the level-2 gate)
    (
        r"item (?P<id>\d+) version (?P<v>\d+) has (?P<n>\d+) unresolved privacy findings? "
        r"\(隐私/保密检查: no\. (?P<nos>[\d, ]+)\): .*",
        "稿件 {id} 第 {v} 版有 {n} 项隐私/保密检查发现尚未处理（第 {nos} 项）："
        "请逐项清除并写明理由，或一键脱敏生成新版本（重新审核）",
    ),
    (
        r"item (?P<id>\d+) version (?P<v>\d+) was stored before the privacy check .* first",
        "稿件 {id} 第 {v} 版保存于隐私/保密检查上线之前，尚未检查：请先“重新检查”",
    ),
    (
        r"item (?P<id>\d+) version (?P<v>\d+) was checked when it was made; .*",
        "稿件 {id} 第 {v} 版保存时已经检查过，它的处理决定有效，无需重新检查",
    ),
    (r"clearing a finding needs a written reason.*", "清除须写明理由，例如：联系人手机号，本人同意公开"),
    (
        r"the reason contains an ID, mobile or card number.*",
        "理由中含有身份证号、手机号或银行卡号：请说明理由，但不要写出号码",
    ),
    (
        r"(?P<u>\S+) is (?P<r>\w+); only the confidentiality reviewer \(保密审查\) or an admin clears a finding",
        "{u} 不能清除：只有保密审查员或办公室管理员可以清除",
    ),
    (
        r"finding (?P<n>\d+) of item (?P<id>\d+) version (?P<v>\d+) was already (?P<d>\w+) by (?P<u>\S+)",
        "稿件 {id} 第 {v} 版的第 {n} 项已由 {u} 处理",
    ),
    (r"item (?P<id>\d+) version (?P<v>\d+) has no finding (?P<n>\d+) .*", "稿件 {id} 第 {v} 版没有第 {n} 项"),
    (
        r"item (?P<id>\d+) version (?P<v>\d+) has nothing to mask .*",
        "稿件 {id} 第 {v} 版没有可遮蔽的内容（正文中没有身份证号、手机号或银行卡号，"
        "也没有需要清理的 DOCX/XLSX 附件）：请逐项清除并写明理由",
    ),
    (r"(?P<u>\S+) may not edit item (?P<id>\d+) of (?P<d>.+)", "{u} 不能修改{d}的稿件 {id}"),
    # what the channels' validate() say (channels/*.py)
    (r"the title is empty; every page of the website needs one", "标题为空：网站的每个页面都需要标题"),
    (r"the item has no category; the website files every page under one", "没有类别：网站按类别归档每个页面"),
    (r"the title is empty; the webhook receiver needs one", "标题为空：接收方需要标题"),
    (r"the title is empty; the CMS needs one", "标题为空：网站内容管理系统需要标题"),
    (r"the title is empty; a Weibo post is the title and a link", "标题为空：微博内容由标题和链接组成"),
    (
        r"the body refers to image asset://(?P<h>\S+) which is not among the item's files",
        "正文引用的图片 {h} 不在稿件的文件中，请重新插入",
    ),
    (r"file '(?P<f>[^']*)' is missing on disk .*; upload it again", "文件“{f}”在服务器上找不到了，请重新上传"),
    (
        r"the title is (?P<n>[\d,]+) characters; WeChat takes at most (?P<m>[\d,]+) — shorten it",
        "标题有 {n} 个字，微信公众号最多 {m} 个，请缩短",
    ),
    (
        r"the author '(?P<a>[^']*)' is (?P<n>\d+) characters; WeChat takes at most (?P<m>\d+) — .*",
        "作者“{a}”有 {n} 个字，微信公众号最多 {m} 个，请缩短或设置渠道的作者",
    ),
    (r"a cover image is required for WeChat .*", "微信公众号文章需要封面图（用作缩略图），请添加"),
    (r"the body shows an image that is not attached to the item .*", "正文中的图片没有附加到稿件，请重新插入"),
    (
        r"the image (?P<src>\S+) is hosted elsewhere and WeChat strips such images — .*",
        "图片 {src} 存放在其他网站，微信会去掉这类图片，请把图片上传到稿件中",
    ),
    (
        r"the link (?P<href>\S+) (?P<why>points at .*); WeChat readers outside the campus network cannot open it — .*",
        "链接 {href} 指向校内网络，校外的微信读者打不开，请改为公开页面的链接或删除",
    ),
    (r"the body is empty", "正文为空"),
    (
        r"the body is (?P<n>[\d,]+) characters once formatted for WeChat; WeChat takes fewer than (?P<m>[\d,]+) — .*",
        "正文排版后有 {n} 个字符，微信公众号须少于 {m} 个，请缩短或拆成几篇",
    ),
    (r"the body is over 1 MB once formatted for WeChat — shorten it", "正文排版后超过 1 MB，请缩短"),
    (
        r"the item's page (?P<url>\S+) is not on Weibo's safe domain (?P<d>\S+); .*",
        "稿件页面 {url} 不在微博的安全域名 {d} 下，微博只接受该域名的链接",
    ),
]
#: role -> (an English noun with its article, the plural, 中文), for the sentences that name roles
ROLE_WORDS: dict[str, tuple[str, str, str]] = {
    "editor": ("an editor", "editors", "编辑"),
    "department_head": ("a department head", "department heads", "部门负责人"),
    "confidentiality_reviewer": ("a confidentiality reviewer", "confidentiality reviewers", "保密审查员"),
    "admin": ("an office admin", "office admins", "办公室管理员"),
    "viewer": ("a viewer", "viewers", "查看者"),
}
_ROLE_ZH = {en: zh for one, many, zh in ROLE_WORDS.values() for en in (one.split(" ", 1)[1], many)}


def _listed(words: list[str], sep: str, last: str) -> str:
    return words[0] if len(words) == 1 else sep.join(words[:-1]) + last + words[-1]


def refusal(role: str, allowed: list[str]) -> str:
    """'this page is for editors and office admins; you are a viewer' (roles in ROLE_WORDS' order)."""
    many = [ROLE_WORDS[r][1] for r in ROLE_WORDS if r in allowed]
    return f"this page is for {_listed(many, ', ', ' and ')}; you are {ROLE_WORDS.get(role, (role,))[0]}"


ERRORS.append((r"this page is for (?P<roles>.+); you are an? (?P<role>.+)", "此页面仅供{roles}使用；您的角色是{role}"))
MESSAGES.update(i18n_registers.MESSAGES)
MESSAGES.update(i18n_notify.MESSAGES)
ERRORS += i18n_registers.ERRORS
ERRORS += i18n_notify.ERRORS
ERRORS.extend(RECORDS_ERRORS)
_ERRORS = [(re.compile(p, re.S), zh) for p, zh in ERRORS]
_CHANNEL_PREFIX = re.compile(r"(?P<channel>[\w.-]+): (?P<rest>.+)", re.S)


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

    def error(self, error: BaseException | str) -> str:
        """A validation message for the page: on Chinese pages the common ones in Chinese with the
        English beside it; as it is in English (and when the catalogue does not know it).

        An exception carrying ``problems`` (ContentNotAccepted: one per channel, "website: ...") is
        rendered problem by problem.
        """
        problems = getattr(error, "problems", None)
        if problems:
            return ("；" if self.lang == "zh" else "; ").join(self.problem(p) for p in problems)
        return self.problem(str(error))

    def problem(self, message: str) -> str:
        if self.lang != "zh":
            return message
        zh = self._zh(message)
        if zh is None:
            m = _CHANNEL_PREFIX.fullmatch(message)  # "website: the title is empty; ..."
            inner = self._zh(m.group("rest")) if m else None
            if m is None or inner is None:
                return message
            zh = f"{m.group('channel')}：{inner}"
        return f"{zh}（{message}）"

    def _zh(self, message: str) -> str | None:
        for pattern, zh in _ERRORS:
            m = pattern.fullmatch(message.strip())
            if m:
                groups = m.groupdict()
                if "status" in groups:
                    groups["status"] = self.status(groups["status"])
                if "roles" in groups:  # "editors, department heads and office admins"
                    names = re.split(r", | and ", groups["roles"])
                    groups["roles"] = _listed([_ROLE_ZH.get(n, n) for n in names], "、", "和")
                    groups["role"] = _ROLE_ZH.get(groups["role"], groups["role"])
                return zh.format(**groups)
        return None

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
