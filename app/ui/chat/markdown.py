"""Message text to a QTextDocument: Markdown by Qt, fenced code blocks coloured by Pygments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextFrame,
    QTextFrameFormat,
)

from app.ui.theme import Theme

# Frame property marking a code block; its value is the block's index in the message.
CODE_BLOCK_PROPERTY = QTextFormat.Property.UserProperty + 1
CODE_PADDING = 10

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)[^\n]*$")


@dataclass(frozen=True)
class Segment:
    """A run of Markdown text, or one fenced code block (``closed`` is False while streaming)."""

    text: str
    code: bool = False
    language: str = ""
    closed: bool = True


def split_fences(text: str) -> list[Segment]:
    """Cut text into Markdown runs and fenced code blocks; an unclosed fence runs to the end."""
    segments: list[Segment] = []
    lines = text.split("\n")
    prose: list[str] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            prose.append(lines[index])
            index += 1
            continue
        fence, language = match.group(2), match.group(3)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        index += 1
        closed = False
        while index < len(lines):
            if closing.match(lines[index]):
                closed = True
                index += 1
                break
            body.append(lines[index])
            index += 1
        if prose:
            segments.append(Segment("\n".join(prose)))
            prose = []
        segments.append(Segment("\n".join(body), code=True, language=language, closed=closed))
    if prose:
        segments.append(Segment("\n".join(prose)))
    return segments


def code_blocks(text: str) -> list[str]:
    """The source of each fenced code block, in order (what each copy button copies)."""
    return [s.text for s in split_fences(text) if s.code]


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    try:
        return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


@lru_cache(maxsize=4)
def _token_formats(style_name: str) -> dict[_TokenType, QTextCharFormat]:
    style: StyleMeta = get_style_by_name(style_name)
    formats: dict[_TokenType, QTextCharFormat] = {}
    for token, spec in style:
        fmt = QTextCharFormat()
        if not (spec["color"] or spec["bold"] or spec["italic"]):
            continue
        if spec["color"]:
            fmt.setForeground(QColor("#" + spec["color"]))
        if spec["bold"]:
            fmt.setFontWeight(QFont.Weight.Bold)
        if spec["italic"]:
            fmt.setFontItalic(True)
        formats[token] = fmt
    return formats


def code_font() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


def _insert_code(cursor: QTextCursor, segment: Segment, index: int, theme: Theme, base: QFont) -> None:
    frame_format = QTextFrameFormat()
    frame_format.setPadding(CODE_PADDING)
    frame_format.setTopMargin(6)
    frame_format.setBottomMargin(6)
    frame_format.setBorder(0)
    frame_format.setProperty(CODE_BLOCK_PROPERTY, index)
    frame = cursor.insertFrame(frame_format)
    mono = code_font()
    mono.setPointSizeF(base.pointSizeF() * 0.92)
    header = QTextCharFormat()
    header.setForeground(QColor(theme.text_muted))
    small = QFont(base)
    small.setPointSizeF(base.pointSizeF() * 0.8)
    header.setFont(small)
    cursor.insertText(segment.language or "code", header)
    cursor.insertBlock()
    plain = QTextCharFormat()
    plain.setFontFamilies(mono.families())
    plain.setFontFixedPitch(True)
    plain.setFontPointSize(mono.pointSizeF())
    plain.setForeground(QColor(theme.text))
    formats = _token_formats("one-dark" if theme.dark else "default")
    for token, value in _lexer(segment.language).get_tokens(segment.text):
        kind = token
        fmt = formats.get(kind)
        while fmt is None and kind.parent is not None:
            kind = kind.parent
            fmt = formats.get(kind)
        char_format = QTextCharFormat(plain)
        if fmt is not None:
            char_format.merge(fmt)
        cursor.insertText(value, char_format)
    cursor.setPosition(frame.lastPosition())
    cursor.movePosition(QTextCursor.MoveOperation.NextBlock)


def code_frames(document: QTextDocument) -> list[tuple[int, QTextFrame]]:
    """The code-block frames of a built document with their block index, in order."""
    frames = []
    for frame in document.rootFrame().childFrames():
        fmt = frame.frameFormat()
        # Ask hasProperty first: property() of an unset key trips a PySide refcount bug.
        if fmt.hasProperty(CODE_BLOCK_PROPERTY):
            frames.append((fmt.intProperty(CODE_BLOCK_PROPERTY), frame))
    return frames


def _collapse(block: QTextBlock) -> None:
    """Make an empty block that only separates frames take (almost) no height."""
    if not block.isValid() or block.text():
        return
    cursor = QTextCursor(block)
    block_format = block.blockFormat()
    block_format.setLineHeight(1, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
    block_format.setTopMargin(0)
    block_format.setBottomMargin(0)
    cursor.setBlockFormat(block_format)
    tiny = QTextCharFormat()
    tiny.setFontPointSize(1)
    cursor.setBlockCharFormat(tiny)


def build_document(
    text: str, theme: Theme, font: QFont, width: float, *, markdown: bool = True
) -> QTextDocument:
    """Lay out one message at ``width`` pixels: Markdown with code blocks, or plain text."""
    document = QTextDocument()
    document.setDefaultFont(font)
    document.setDocumentMargin(0)
    document.setDefaultStyleSheet(f"a {{ color: {theme.accent}; }}")
    if not markdown:
        document.setPlainText(text)
        document.setTextWidth(width)
        return document
    cursor = QTextCursor(document)
    code_index = 0
    after = "start"
    for segment in split_fences(text):
        if segment.code:
            _insert_code(cursor, segment, code_index, theme, font)
            code_index += 1
            after = "code"
        elif segment.text.strip():
            if after == "text":
                cursor.insertBlock()
            cursor.insertMarkdown(
                segment.text.strip("\n"), QTextDocument.MarkdownFeature.MarkdownDialectGitHub
            )
            after = "text"
    if code_index:
        _collapse(document.firstBlock())
        _collapse(document.lastBlock())
    document.setTextWidth(width)
    return document
