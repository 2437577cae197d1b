"""The Essie lexer: expression text -> tokens, each with its character position.

Why apart from the parser: what counts as a word, a quoted phrase, an escape or a bracket operator is a
question of characters, while the parser's questions are about precedence and operands; the formatter
also needs the lexer's keyword and special-character sets to escape words so they read back as words.
Errors are :class:`~trialfinder.search.errors.EssieSyntaxError` with the offset of the offending text.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialfinder.search.errors import EssieSyntaxError

__all__ = ["BRACKET_OPS", "KEYWORDS", "SPECIAL_CHARS", "Token", "tokenize"]

#: Bare upper-case words that are operators, not search words (lower case ``and`` is a word).
KEYWORDS = frozenset({"AND", "OR", "NOT", "MISSING"})
#: Operators written ``NAME[argument]``.
BRACKET_OPS = ("AREA", "SEARCH", "RANGE", "DISTANCE", "EXPANSION", "COVERAGE", "TILT")
#: Characters that end a word; a backslash makes them part of it.
SPECIAL_CHARS = frozenset('()"[]')


@dataclass(slots=True)
class Token:
    """One token; ``pos`` is the 0-based offset of its first character (for error messages)."""

    kind: str  # WORD PHRASE LPAREN RPAREN AND OR NOT MISSING OP EOF
    pos: int
    text: str = ""
    arg: str = ""  # OP: the text between the brackets
    arg_pos: int = 0  # OP: offset of the first character after '['


def tokenize(text: str, param: str) -> list[Token]:
    """The tokens of ``text``, ending with an EOF token; ``param`` names the parameter in errors."""
    toks: list[Token] = []
    n = len(text)
    i = 0

    def fail(pos: int, detail: str) -> EssieSyntaxError:
        return EssieSyntaxError(pos, detail, param)

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "(":
            toks.append(Token("LPAREN", i))
            i += 1
        elif c == ")":
            toks.append(Token("RPAREN", i))
            i += 1
        elif c == '"':
            start = i
            i += 1
            buf: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise fail(start, "unterminated quoted phrase (no closing '\"')")
            i += 1
            phrase = " ".join("".join(buf).split())
            if not phrase:
                raise fail(start, "empty quoted phrase")
            toks.append(Token("PHRASE", start, phrase))
        elif c in "[]":
            raise fail(i, f"unexpected '{c}'")
        else:
            start = i
            buf = []
            escaped = False
            while i < n and not text[i].isspace() and text[i] not in SPECIAL_CHARS:
                if text[i] == "\\" and i + 1 < n and not text[i + 1].isspace():
                    escaped = True
                    i += 1
                buf.append(text[i])
                i += 1
            word = "".join(buf)
            j = i
            while j < n and text[j].isspace():
                j += 1
            if not escaped and word in BRACKET_OPS:
                if j >= n or text[j] != "[":
                    raise fail(j, f"expected '[' after {word}")
                close = j + 1
                while close < n and text[close] not in "[]":
                    close += 1
                if close >= n or text[close] != "]":
                    raise fail(close, f"expected ']' after {word} {_OP_ARG_NAME[word]}")
                toks.append(Token("OP", start, word, text[j + 1:close], j + 1))
                i = close + 1
            elif i < n and text[i] == "[" and not escaped:
                hint = " (operators are upper case)" if word.upper() in BRACKET_OPS else ""
                raise fail(start, f"unknown operator '{word}['; expected one of "
                                  f"{', '.join(op + '[' for op in BRACKET_OPS)}{hint}")
            elif not escaped and word in KEYWORDS:
                toks.append(Token(word, start, word))
            else:
                toks.append(Token("WORD", start, word))
    toks.append(Token("EOF", n))
    return toks


_OP_ARG_NAME = {"AREA": "field", "SEARCH": "document", "RANGE": "bounds", "DISTANCE": "arguments",
                "EXPANSION": "mode", "COVERAGE": "mode", "TILT": "field"}
