"""Two pages of the site that are not listings of one kind of item: the 信息公开指南 (the office's
disclosure guide: what it publishes, how to apply for information, the deadlines, how to reach it)
and the 年度报告 page (the annual reports published, newest first).

The guide is made from the office's settings (:class:`publisher.channel.Office`), which change only
when the workers restart: it is written on a process's first change and by a rebuild. The reports
page lists the live items of the reports' category (``report_category``, default 年度报告): a report
reaches the site the way every item does, through review and the pipeline, and the page is
rewritten in the batch of any change that touches an item of that category.
"""

from __future__ import annotations

from typing import Any

import jinja2

from channels.website.files import Batch
from channels.website.rules import CURRENT, write_rules_library
from channels.website.store import SiteStore
from publisher.channel import Office

#: the pages' paths under the site's folder and base URL
GUIDE_PAGE = "guide.html"
REPORTS_PAGE = "reports.html"
#: annual reports listed at most (one a year: a century)
MAX_REPORTS = 100

TEMPLATES = {
    "guide.html": """\
{% extends "base.html" %}
{% block title %}信息公开指南 - {{ site_title }}{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › 信息公开指南</div>
<h1>{{ office.organisation }}信息公开指南</h1>
<div class="prose">
<p>为便于公民、法人和其他组织获取{{ office.organisation }}的信息，根据{{ office.regulation or "有关规定" }}，\
编制本指南。</p>
<h2 id="active">一、主动公开</h2>
<p>主动公开的信息在本网站发布：按类别见<a href="{{ root }}index.html#directory">信息公开目录</a>，\
现行有效的规章制度见<a href="{{ root }}rules.html">现行有效规章制度库</a>，\
历年信息公开工作年度报告见<a href="{{ root }}reports.html">年度报告</a>。\
每条信息的页面载明索引号、发布机构、发布日期等目录信息。</p>
<h2 id="request">二、依申请公开</h2>
<p>除主动公开的信息外，公民、法人和其他组织可以申请获取相关信息。</p>
<ul>
{% if office.apply_url %}<li>在线申请：填写<a href="{{ office.apply_url }}">依申请公开申请表</a>，\
提交后请保存回执编号。</li>{% endif %}
{% if office.address %}<li>书面申请：将申请书寄送或当面递交至{{ office.address }}。</li>{% endif %}
<li>申请时请写明申请人的姓名或名称、联系方式，所需信息的内容描述，以及获取信息的方式。</li>
</ul>
<p>能够当场答复的，当场予以答复；不能当场答复的，自收到申请之日起\
<strong>{{ office.request_working_days }}个工作日</strong>内予以答复。需要延长答复期限的，\
告知申请人，延长的期限最长不超过<strong>{{ office.extension_working_days }}个工作日</strong>。\
工作日按国家法定节假日安排（含调休上班日）计算。</p>
<h2 id="contact">三、联系方式</h2>
<dl class="meta">
<div><dt>受理机构：</dt><dd>{{ office.name or office.organisation }}</dd></div>
{% if office.address %}<div><dt>办公地址：</dt><dd>{{ office.address }}</dd></div>{% endif %}
{% if office.hours %}<div><dt>办公时间：</dt><dd>{{ office.hours }}</dd></div>{% endif %}
{% if office.phone %}<div><dt>联系电话：</dt><dd>{{ office.phone }}</dd></div>{% endif %}
{% if office.email %}<div><dt>电子邮箱：</dt><dd>\
<a href="mailto:{{ office.email }}">{{ office.email }}</a></dd></div>{% endif %}
</dl>
</div>
{% endblock %}
""",
}


def write_guide(out: Batch, jinja: jinja2.Environment, title: str, office: Office) -> None:
    out.write(GUIDE_PAGE, jinja.get_template("guide.html").render(site_title=title, root="", office=office))


def write_reports(out: Batch, jinja: jinja2.Environment, title: str, reports: list[dict[str, Any]]) -> None:
    """Rewrite the 年度报告 page: ``reports`` are the live items of the reports' category, newest first."""
    out.write(
        REPORTS_PAGE,
        jinja.get_template("listing.html").render(
            site_title=title, root="", kind="信息公开", heading="信息公开工作年度报告", entries=reports
        ),
    )


class SitePages:
    """The pages beside the listings that a change may alter: the 现行有效规章制度库 (rules.py), the
    年度报告 page and the 信息公开指南."""

    def __init__(self, jinja: jinja2.Environment, title: str, office: Office, report_category: str) -> None:
        jinja.loader = jinja2.ChoiceLoader([jinja.loader, jinja2.DictLoader(TEMPLATES)])  # type: ignore[list-item]
        self.jinja, self.title = jinja, title
        self.office, self.report_category = office, report_category
        #: the guide and the reports page are written on this process's first change (the office's
        #: settings change only with a restart)
        self._written = False

    def refresh(self, out: Batch, store: SiteStore, *touched: dict[str, Any] | None, everything: bool = False) -> None:
        """Rewrite the rules library if the change touched a rule (a 有效性 before or after), the
        reports page if it touched a report (its category before or after), and both the guide and
        the reports page on this process's first change or when ``everything`` (a rebuild)."""
        if everything or any(e and e.get("validity") for e in touched):
            write_rules_library(out, self.jinja, self.title, store.in_force(CURRENT))
        first = everything or not self._written
        if first or any(e and e.get("category") == self.report_category for e in touched):
            reports = store.newest("c:" + self.report_category, MAX_REPORTS)
            write_reports(out, self.jinja, self.title, reports)
        if first:
            write_guide(out, self.jinja, self.title, self.office)
            self._written = True
