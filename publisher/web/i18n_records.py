"""The messages of the annual report, CSV import and audit pages (merged into i18n.MESSAGES), kept apart
so the catalogue module stays one screenful of a size."""

from __future__ import annotations

#: key -> (简体中文, English)
RECORDS_MESSAGES: dict[str, tuple[str, str]] = {
    "annual_report": ("年度报告", "Annual report"),
    "import": ("导入", "Import"),
    "audit_log": ("操作记录", "Audit log"),
    "report_figures": ("报告数据及其来源", "The figures and the rows behind them"),
    "figure": ("数据项", "Figure"),
    "checklist_figures": (
        "附件：50 项公开事项（各项的最近公开记录）",
        "Appendix: the 50 checklist items (each one's latest publication)",
    ),
    "figure_key": ("代码", "Key"),
    "rows_behind": ("来源记录", "Rows behind it"),
    "rows_n": ("{n} 条记录", "{n} rows"),
    "rows_more": (
        "只显示前 {shown} 条，共 {n} 条；完整清单请下载此项的 CSV",
        "showing the first {shown} of {n}; download this figure's CSV for all of them",
    ),
    "registers_hidden": (
        "依申请公开和举报登记的明细只向办公室管理员显示；此处只显示件数",
        "the request and complaint registers' rows are shown to office admins only; here only the number",
    ),
    "download_docx": ("下载 Word（DOCX）", "Download Word (DOCX)"),
    "download_md": ("下载 Markdown", "Download Markdown"),
    "download_figures": ("下载全部数据来源（CSV）", "Download every figure's rows (CSV)"),
    "figure_csv": ("此项 CSV", "This figure as CSV"),
    "report_warnings": ("请核对设置", "Check the settings"),
    "edit_template": ("编辑报告模板", "Edit the report template"),
    "template_office": ("正在使用本单位的模板：{path}", "Using the office's template: {path}"),
    "template_shipped": (
        "正在使用系统自带的模板（去年的文本）；保存后成为本单位的模板：{path}",
        "Using the shipped template (last year's text); saving makes it the office's copy: {path}",
    ),
    "template_saved": ("模板已保存，下载的报告将使用它", "Saved: the downloaded report uses it from now on"),
    "template_refused": (
        "模板有错误，未保存，原模板保持不变",
        "The template has an error: not saved, the old copy is kept",
    ),
    "template_help": (
        "Jinja2 模板：变量列在模板开头；保存前会按本报告期试生成一次，出错的模板不会保存",
        "A Jinja2 template; its variables are listed at its top. It is tried against this report "
        "period before it is saved: a template with an error is not saved",
    ),
    "template_text": ("模板内容", "Template text"),
    "save_template": ("检查并保存", "Check and save"),
    "restore_shipped": ("恢复为系统自带的模板", "Go back to the shipped template"),
    "origin": ("来源", "Origin"),
    "origin_pipeline": ("本系统发布", "published here"),
    "origin_import": ("导入", "imported"),
    "origin_remote": ("同步发现", "found by sync"),
    "published_at": ("发布时间", "Published"),
    "rep_received": ("收到", "Received"),
    "rep_outcome": ("结果", "Outcome"),
    "rep_subject": ("事项", "Subject"),
    "import_title": ("导入发布记录（CSV）", "Import publications (CSV)"),
    "import_help": (
        "记录在其他地方发布的信息（手工发布，或本系统启用之前）。先预览，确认后一次全部导入；有任何一行出错则不导入。",
        "Record publications made elsewhere (by hand, or before this system). Preview first; the "
        "import is all rows or none.",
    ),
    "import_columns": ("表头（第 1 行）", "The header (row 1)"),
    "csv_file": ("CSV 文件", "CSV file"),
    "create_departments": ("自动添加文件中的新部门", "Add the departments the file names but we lack"),
    "import_errors": (
        "文件有 {n} 处错误，未导入任何内容。行号与 Excel 一致（表头是第 1 行）：",
        "{n} problem(s) in the file, nothing imported. Rows are numbered as in Excel (the header is row 1):",
    ),
    "import_fix": ("改正后重新上传", "Fix the file and upload it again"),
    "would_add": (
        "将新增 {items} 个条目、{pubs} 条发布记录；{present} 行已有记录，将跳过",
        "would add {items} items and {pubs} publications; {present} rows already recorded, skipped",
    ),
    "read_as": ("文件编码：{enc}", "read as {enc}"),
    "rows_added": ("将新增", "To add"),
    "rows_present": ("已有记录（跳过）", "Already recorded (skipped)"),
    "departments_new": ("将添加的部门", "Departments to add"),
    "row": ("行", "Row"),
    "confirm_import": ("确认导入", "Import these rows"),
    "nothing_to_import": ("没有需要新增的内容", "Nothing new to add"),
    "imported": (
        "已导入 {name}：新增 {items} 个条目、{pubs} 条发布记录；{present} 行已有记录",
        "imported {name}: {items} items and {pubs} publications added; {present} rows already recorded",
    ),
    "import_another": ("再导入一个文件", "Import another file"),
    "audit_title": ("操作记录导出", "Audit log export"),
    "audit_help": (
        "一段时间内的全部操作记录（检查时使用），CSV 为 UTF-8（带 BOM），可直接用 Excel 打开",
        "Every audit row of a period, for inspections; the CSV is UTF-8 with a BOM and opens in Excel",
    ),
    "audit_item": ("稿件编号", "Item number"),
    "audit_user": ("操作人（用户名）", "Who acted (user name)"),
    "audit_count": ("本期共 {n} 条记录", "{n} rows in this period"),
    "audit_latest": ("最近 {n} 条", "The newest {n}"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "actor": ("操作人", "Actor"),
    "entity": ("对象", "Entity"),
}

#: the CSV import's common row errors (publisher.counting.ledger.parse_csv), English pattern -> 中文,
#: as i18n.ERRORS: the English is shown beside the Chinese
RECORDS_ERRORS: list[tuple[str, str]] = [
    (
        r"row (?P<row>\d+): published_at '(?P<v>[^']*)' is not YYYY-MM-DD or YYYY-MM-DD HH:MM\[:SS\]",
        "第 {row} 行：发布时间“{v}”格式不对，应写作 YYYY-MM-DD 或 YYYY-MM-DD HH:MM[:SS]",
    ),
    (r"row (?P<row>\d+): published_at (?P<v>.+) is in the future", "第 {row} 行：发布时间 {v} 在将来"),
    (r"row (?P<row>\d+): title is empty", "第 {row} 行：标题为空"),
    (r"row (?P<row>\d+): unknown category '(?P<v>[^']*)' .*", "第 {row} 行：没有“{v}”这个类别"),
    (r"row (?P<row>\d+): department is empty", "第 {row} 行：部门为空"),
    (
        r"row (?P<row>\d+): unknown department '(?P<v>[^']*)' .*",
        "第 {row} 行：没有“{v}”这个部门（先添加部门，或勾选“自动添加文件中的新部门”）",
    ),
    (r"row (?P<row>\d+): unknown channel '(?P<v>[^']*)' .*", "第 {row} 行：没有配置“{v}”这个渠道"),
    (r"row (?P<row>\d+): (?P<n>\d+) fields, the header has (?P<h>\d+)", "第 {row} 行有 {n} 列，表头有 {h} 列"),
    (
        r"row (?P<row>\d+): repeats row (?P<r>\d+) .*",
        "第 {row} 行与第 {r} 行重复（标题、类别、部门和渠道都相同）",
    ),
    (r"row 1 \(header\): .*", "第 1 行（表头）不对，表头应为下面列出的各列"),
    (
        r"the ledger changed since the preview: .*",
        "预览之后发布记录有了变化（其他导入或同步已记录了其中一部分），本次未导入任何内容：请核对下面新的预览后再确认",
    ),
    (r"report template, line (?P<n>\d+): (?P<m>.+)", "报告模板第 {n} 行有错误：{m}"),
    (r"report template: (?P<m>.+)", "报告模板有错误：{m}"),
    (r"the file is not UTF-8 .*", "文件不是 UTF-8 编码：请在 Excel 中另存为“CSV UTF-8”"),
]
