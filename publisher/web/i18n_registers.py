"""The words of the coverage, register and public pages (/coverage, /registers/…, /apply, /guide), kept
apart from publisher.web.i18n so that module stays one screenful of shared words; it merges these in."""

from __future__ import annotations

#: key -> (简体中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # coverage
    "coverage": ("公开事项覆盖", "Coverage"),
    "coverage_title": ("公开事项清单覆盖情况（50项）", "Checklist coverage (the 50 items)"),
    "coverage_hint": (
        "每个公开事项最近一次发布的稿件、发布位置和状态；状态按该事项的更新周期判断",
        "Each checklist item's latest publication, where it is, and its status by the item's rule",
    ),
    "cov_current": ("现行", "Current"),
    "cov_stale": ("过期", "Stale"),
    "cov_never": ("从未发布", "Never published"),
    "cov_rule": ("更新周期", "Rule"),
    "cov_latest": ("最近发布", "Latest"),
    "cov_where": ("发布位置", "Where"),
    "rule_annual": ("每年", "Annual"),
    "rule_semester": ("每学期", "Each semester"),
    "rule_quarterly": ("每季度", "Quarterly"),
    "rule_monthly": ("每月", "Monthly"),
    "rule_on_change": ("有变化时", "On change"),
    "timeliness": ("各部门公开及时性", "Timeliness per department"),
    "timeliness_hint": (
        "从稿件创建到首次发布的工作日数（按国家法定节假日计算），超过 {n} 个工作日为不及时",
        "Working days from an item's creation to its first publication (Chinese holidays observed); over {n} is late",
    ),
    "items_count": ("稿件数", "Items"),
    "on_time": ("及时", "On time"),
    "late": ("不及时", "Late"),
    "median_days": ("中位数（工作日）", "Median (working days)"),
    "max_days": ("最长（工作日）", "Longest (working days)"),
    "late_items": ("不及时的稿件", "Late items"),
    "days_unit": ("{n} 个工作日", "{n} working days"),
    "no_timeliness": ("这段时间内没有发布的稿件", "No pipeline item was published in this period"),
    # the registers
    "registers": ("登记簿", "Registers"),
    "requests": ("依申请公开登记", "Requests for disclosure"),
    "complaints": ("举报投诉登记", "Complaints"),
    "requests_hint": (
        "收到申请后 {n} 个工作日内答复（收到当日不计）；可延期一次，最多 {m} 个工作日，须说明理由并告知申请人",
        "Answer within {n} working days of receipt (the day of receipt not counted); one extension of "
        "at most {m} working days, with the reason told to the applicant",
    ),
    "complaints_hint": (
        "收到后 {n} 个工作日内办结",
        "Settle within {n} working days of receipt",
    ),
    "state_open": ("未办结", "Open"),
    "state_closed": ("已办结", "Closed"),
    "overdue_count": ("{n} 件已超期", "{n} overdue"),
    "received": ("收到时间", "Received"),
    "received_hint": ("办公室时间；留空为现在", "office time; empty: now"),
    "applicant": ("申请人", "Applicant"),
    "complainant": ("举报投诉人", "Complainant"),
    "subject": ("内容", "Subject"),
    "via": ("途径", "Received by"),
    "due": ("答复期限", "Due"),
    "outcome": ("结果", "Outcome"),
    "days_left": ("剩 {n} 个工作日", "{n} working days left"),
    "due_today": ("今天到期", "due today"),
    "overdue_by": ("已超期 {n} 个工作日", "overdue by {n} working days"),
    "extended": ("已延期", "extended"),
    "extend": ("延期", "Extend"),
    "extend_days": ("延长工作日数", "Working days"),
    "extend_reason": ("延期理由（将告知申请人）", "Why (the applicant is told)"),
    "close": ("办结", "Close"),
    "answered": ("答复时间", "Answered"),
    "closed_at": ("办结时间", "Closed"),
    "legal_reason": ("不予公开的依据", "Legal ground"),
    "legal_other": ("其他（请填写）", "Other (write it)"),
    "legal_text": ("其他依据", "Other ground"),
    "note": ("备注", "Note"),
    "resolution": ("处理情况", "Resolution"),
    "add_request": ("登记申请", "Record a request"),
    "add_complaint": ("登记举报投诉", "Record a complaint"),
    "receipt_no": ("回执编号", "Receipt number"),
    "contact": ("联系方式", "Contact"),
    "late_answer": ("超期答复", "answered late"),
    "via_letter": ("信函", "Letter"),
    "via_email": ("电子邮件", "E-mail"),
    "via_web": ("网上申请", "Web"),
    "via_in_person": ("当面", "In person"),
    "via_phone": ("电话", "Phone"),
    "via_fax": ("传真", "Fax"),
    "via_other": ("其他", "Other"),
    "oc_open": ("办理中", "Open"),
    "oc_disclosed": ("予以公开", "Disclosed"),
    "oc_partly": ("部分公开", "Partly disclosed"),
    "oc_not_disclosed": ("不予公开", "Not disclosed"),
    "oc_not_held": ("信息不存在", "Not held"),
    "oc_upheld": ("属实", "Upheld"),
    "oc_partly_upheld": ("部分属实", "Partly upheld"),
    "oc_rejected": ("不属实", "Rejected"),
    "lr_state_secret": ("涉及国家秘密", "State secret"),
    "lr_trade_secret": ("涉及商业秘密", "Trade secret"),
    "lr_privacy": ("涉及个人隐私", "Personal privacy"),
    "lr_other_law": ("法律法规禁止公开", "Barred by law"),
    "from_public_form": ("网上申请表", "public form"),
    # the public form and the guide
    "apply": ("依申请公开申请", "Apply for disclosure"),
    "apply_nav": ("依申请公开", "Apply"),
    "apply_intro": (
        "向{office}申请公开未主动公开的信息。办公室将在收到申请后 {n} 个工作日内答复。",
        "Ask {office} for information it has not published. The office answers within {n} working days of receipt.",
    ),
    "apply_applicant": ("申请人姓名或单位名称", "Your name, or your organisation's"),
    "apply_contact": ("联系方式（电话、电子邮箱或通信地址）", "How to reach you (phone, e-mail or postal address)"),
    "apply_subject": ("所需信息的内容描述", "The information you ask for"),
    "apply_subject_hint": (
        "请尽量写明文件名称、文号或便于查找的其他特征",
        "Name the document, its number (文号) or anything else that helps find it",
    ),
    "apply_privacy": (
        "您填写的信息仅用于办理本申请。请勿填写身份证号码。",
        "What you write is used only to answer this request. Do not write an ID card number.",
    ),
    "apply_send": ("提交申请", "Send"),
    "apply_expired": (
        "表单已过期或来自其他网站，请核对后重新提交",
        "The form expired or came from another site: check it and send it again",
    ),
    "apply_done": ("申请已收到", "Request received"),
    "apply_again": ("这份申请此前已经收到，以下是原回执", "This request was already received: its receipt is below"),
    "apply_keep": (
        "请保存回执编号，查询办理进度或补充材料时请提供此编号。",
        "Keep the receipt number: give it when you ask about your request or send more.",
    ),
    "apply_due": ("答复期限", "Answer due by"),
    "apply_will_contact": ("办公室将通过以下方式与您联系", "The office will contact you at"),
    "apply_limit": ("最多 {n} 字", "at most {n} characters"),
    "guide": ("信息公开指南", "Disclosure guide"),
    "guide_link": ("公开指南", "Guide"),
    "guide_intro": (
        "本指南说明如何获取{org}公开的信息，以及如何申请公开其他信息。",
        "How to find what {org} discloses, and how to ask for other information.",
    ),
    "guide_proactive": ("主动公开", "Published information"),
    "guide_proactive_text": (
        "学校按照《高等学校信息公开办法》和信息公开事项清单，通过学校网站等渠道主动公开信息。",
        "The school publishes information under the Measures for Disclosure of Information of Higher "
        "Education Institutions and the national checklist, on its website and other channels.",
    ),
    "guide_site": ("信息公开网", "Disclosure website"),
    "guide_how": ("依申请公开", "Applying for disclosure"),
    "guide_how_text": (
        "公民、法人和其他组织可以申请公开未主动公开的信息。申请可在网上提交，也可以信函、电子邮件或当面提交至信息公开办公室。"
        "申请应写明申请人姓名或名称、联系方式，以及所需信息的内容描述。",
        "Anyone, or any organisation, may ask for information that has not been published: online, or by "
        "letter, e-mail or in person at the office. Say who you are, how to reach you, and what you ask for.",
    ),
    "guide_apply_online": ("在线提交申请", "Apply online"),
    "guide_time": ("答复期限", "Time limits"),
    "guide_time_text": (
        "能够当场答复的当场答复；不能当场答复的，自收到申请之日起 {n} 个工作日内答复（收到当日不计，"
        "按国家法定节假日安排计算）。需要延长答复期限的，可延长一次，最多 {m} 个工作日，并告知申请人延期理由。",
        "Answered on the spot where possible; otherwise within {n} working days of receipt (the day of "
        "receipt not counted; public holidays and make-up working days observed). Where more time is "
        "needed, it may be extended once, by at most {m} working days, and the applicant is told why.",
    ),
    "guide_not": ("不予公开的范围", "What is not disclosed"),
    "guide_not_text": (
        "涉及国家秘密、商业秘密、个人隐私以及法律法规禁止公开的信息不予公开；涉及商业秘密和个人隐私的，"
        "经权利人同意或不公开可能对公共利益造成重大影响的，可以公开。",
        "Information that is a state secret, a trade secret or personal privacy, or that the law bars, is "
        "not disclosed; trade secrets and privacy may be disclosed with the holder's consent or where the "
        "public interest outweighs them.",
    ),
    "guide_complaints": ("监督和举报", "Complaints"),
    "guide_complaints_text": (
        "认为学校未依法履行信息公开义务的，可以向信息公开办公室举报投诉，办公室在 {n} 个工作日内办结；"
        "也可以向学校的上级主管部门举报。",
        "If you think the school has not met its duty to disclose, you may complain to the office, which "
        "settles it within {n} working days, or to the school's supervising authority.",
    ),
    "guide_contact": ("联系方式", "Contact"),
    "office_name": ("受理机构", "Office"),
    "office_address": ("地址", "Address"),
    "office_phone": ("电话", "Phone"),
    "office_email": ("电子邮箱", "E-mail"),
    "office_hours": ("办公时间", "Hours"),
}

#: English message (a pattern matched whole) -> its Chinese, for the services' refusals on these pages
ERRORS: list[tuple[str, str]] = [
    (r"a request needs who asked \(applicant\) and what was asked \(subject\)", "请填写申请人和申请内容"),
    (r"a complaint needs who made it and what it is about", "请填写举报投诉人和内容"),
    (r"received through '(?P<v>.*)'\? one of: .*", "请选择收到的途径（“{v}”不是可选项）"),
    (r"the time received is in the future", "收到时间不能晚于现在"),
    (r"'(?P<v>.*)' is not a date; write YYYY-MM-DD or YYYY-MM-DD HH:MM \(office time\)", "“{v}”不是有效的日期"),
    (r"the time received needs a time zone", "收到时间需要带时区"),
    (r"say why the answer needs more time \(the applicant is told\)", "请填写延期理由（将告知申请人）"),
    (r"an extension is 1 to (?P<m>\d+) working days, not (?P<n>-?\d+)", "延期为 1 至 {m} 个工作日，不能是 {n}"),
    (r"an extension is a number of working days, not .*", "延期天数须为数字"),
    (
        r"request (?P<id>\d+) was already extended once \(to (?P<d>\S+)\); only one extension is allowed",
        "申请 {id} 已延期一次（至 {d}），只能延期一次",
    ),
    (r"request (?P<id>\d+) is closed \((?P<o>\w+)\); nothing to extend", "申请 {id} 已办结，不能延期"),
    (r"request (?P<id>\d+) is already closed \((?P<o>\w+)\)", "申请 {id} 已经办结"),
    (r"complaint (?P<id>\d+) is already closed \((?P<o>\w+)\)", "举报投诉 {id} 已经办结"),
    (r"outcome '(?P<v>.*)'\? one of: .*", "请选择办理结果"),
    (r"'(?P<o>\w+)' needs the legal reason .*", "部分公开或不予公开须写明依据"),
    (r"answered before it was received\?", "答复时间早于收到时间"),
    (r"closed before it was received\?", "办结时间早于收到时间"),
    (r"say how it was settled \(--resolution\)", "请填写处理情况"),
    (r"no request (?P<id>\d+) \(see `publisher request list`\)", "没有编号为 {id} 的申请"),
    (r"no complaint (?P<id>\d+) \(see `publisher complaint list`\)", "没有编号为 {id} 的举报投诉"),
    (r"no entry (?P<id>\d+)", "没有编号为 {id} 的登记"),
    (r"unknown rule '(?P<v>.*)'; one of: .*", "没有“{v}”这种更新周期"),
    # the public form
    (r"the form's applicant field is empty; fill it in", "请填写申请人姓名或单位名称"),
    (r"the form's contact field is empty; fill it in", "请填写联系方式，以便办公室答复您"),
    (r"the form's subject field is empty; fill it in", "请填写所需信息的内容描述"),
    (
        r"more than (?P<n>\d+) submissions from this address within (?P<m>\d+) minutes; .*",
        "同一网络地址 {m} 分钟内提交超过 {n} 次，请稍后再试，或通过信函、电子邮件提交申请",
    ),
]

for _field, _zh in {"applicant": "申请人", "contact": "联系方式", "subject": "内容描述"}.items():
    ERRORS += [
        (rf"the form's {_field} field is over (?P<n>\d+) characters; shorten it", _zh + "超过 {n} 字，请缩短"),
        (
            rf"the form's {_field} field contains .*; type it again as plain text",
            _zh + "含有换行或控制字符，请重新输入",
        ),
    ]
