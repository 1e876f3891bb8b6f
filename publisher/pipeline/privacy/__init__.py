"""The privacy and secrecy check (issue 12): nothing that must not be public goes out.

``check_text``, ``check_file`` and ``check_item`` return Findings (``findings_json`` gives
``{"findings": [{"kind", "where", "masked", "rule"}]}``); ``mask_text`` masks a body, ``clean_docx`` and
``clean_xlsx`` write cleaned copies of attachments. See docs/privacy.md.
"""

from __future__ import annotations

from .check import check_file, check_item, check_text
from .findings import KINDS, RULES, Finding, findings_dict, findings_json
from .marks import WordList, load_word_list, words_for
from .mask import clean_docx, clean_file, clean_xlsx, mask_text

__all__ = [
    "KINDS",
    "RULES",
    "Finding",
    "WordList",
    "check_file",
    "check_item",
    "check_text",
    "clean_docx",
    "clean_file",
    "clean_xlsx",
    "findings_dict",
    "findings_json",
    "load_word_list",
    "mask_text",
    "words_for",
]
