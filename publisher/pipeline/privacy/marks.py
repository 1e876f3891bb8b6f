"""Classification marks (密级, internal-use marks) and the office's sensitive-word list.

绝密/机密/秘密 are ordinary words too (保守国家秘密, 商业秘密, 机密文件), so a level counts as a mark only
where it is written as one: with ★ (秘密★1年, 机密★, 绝密★长期), in brackets (【秘密】, （机密）), or alone
on its line, perhaps with a period (秘密 1年). The internal-use marks (内部资料, 注意保密, 不得外传…) count
wherever they appear.

The word list is a UTF-8 text file, one ``word<TAB>reason`` a line; blank lines and lines starting with
``#`` are skipped. A word without a reason is refused, so every finding tells the reviewer why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from publisher.errors import ConfigError
from publisher.settings import Settings

from .findings import Finding, finding
from .numbers import LineIndex

_LEVEL = "(?:绝密|机密|秘密)"
_PERIOD = r"(?:\s*[0-9０-９一二三四五六七八九十]+\s*(?:年|个月|月|天|日)|\s*长期)"
_STAR = r"\s*[★☆⭐]" + _PERIOD + "?"
INTERNAL_MARKS = ("内部资料", "内部文件", "注意保密", "不得外传", "严禁外传", "请勿外传", "内部使用", "仅供内部")
_MARK = re.compile(
    rf"{_LEVEL}{_STAR}"  # 秘密★1年
    rf"|[【\[（(〔]\s*{_LEVEL}{_PERIOD}?\s*[】\]）)〕]"  # 【机密】
    rf"|^[ \t\u3000]*{_LEVEL}{_PERIOD}?[ \t\u3000]*$"  # alone on its line
    rf"|{'|'.join(INTERNAL_MARKS)}",
    re.M,
)


#: every mark holds one of these: a text without any has none (a substring test costs ~1/50 of the
#: regex on a typical body, and the worker re-checks each post before it goes out)
MARK_HINTS = ("密", "内部", "外传")


def mark_findings(text: str, where: str, lines: LineIndex | None = None) -> list[Finding]:
    if not any(h in text for h in MARK_HINTS):
        return []
    return mark_findings_whole(text, where, lines)


def mark_findings_whole(text: str, where: str, lines: LineIndex | None = None) -> list[Finding]:
    """:func:`mark_findings` without the shortcut: the reference the tests hold it to."""
    out = []
    for m in _MARK.finditer(text):
        place = f"{where}:{lines.line(m.start())}" if lines else where
        out.append(finding("classification_mark", place, m.group(0).strip()))
    return out


@dataclass(frozen=True)
class WordList:
    """The sensitive words, each with its reason; ``WordList.empty()`` when the office keeps none."""

    words: tuple[tuple[str, str], ...] = ()

    @classmethod
    def empty(cls) -> WordList:
        return cls(())

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> WordList:
        return cls(tuple(pairs))

    def __post_init__(self) -> None:
        reasons = {w: r for w, r in self.words}
        ordered = sorted(reasons, key=len, reverse=True)  # the longest word wins where two overlap
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        object.__setattr__(self, "_reasons", reasons)
        object.__setattr__(self, "_pattern", pattern)

    def __len__(self) -> int:
        return len(self.words)

    def findings(self, text: str, where: str, lines: LineIndex | None = None) -> list[Finding]:
        pattern = self._pattern  # type: ignore[attr-defined]
        if pattern is None:
            return []
        out = []
        for m in pattern.finditer(text):
            place = f"{where}:{lines.line(m.start())}" if lines else where
            out.append(finding("sensitive_word", place, m.group(0), self._reasons[m.group(0)]))  # type: ignore[attr-defined]
        return out


def load_word_list(path: str | Path) -> WordList:
    """Read a ``word<TAB>reason`` file; ConfigError naming the line when one is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"the sensitive-word list {path} does not exist (privacy.words_file)") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the sensitive-word list {path} is not UTF-8 text: save it as UTF-8") from exc
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, tab, reason = line.partition("\t")
        if not tab or not word.strip() or not reason.strip():
            raise ConfigError(
                f"{path.name} line {n}: write the word, a TAB, then the reason it is sensitive (word<TAB>reason)"
            )
        pairs.append((word.strip(), reason.strip()))
    return WordList.of(pairs)


def words_for(settings: Settings) -> WordList:
    """The word list named by ``privacy.words_file`` (empty when none is set)."""
    name = settings.privacy.words_file
    return load_word_list(settings.path(name)) if name else WordList.empty()
