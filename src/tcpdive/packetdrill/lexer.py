"""Tokenizer for packetdrill scripts (follows packetdrill's lexer.l).

flex picks the longest match among all rules and breaks ties by rule order; this
hand-written scanner reproduces the decisions that matter for real scripts:
``0...0.100`` is INTEGER ELLIPSIS FLOAT, ``.1`` is a FLOAT, ``192.0.2.1`` an IPv4
address, ``fd::1`` an IPv6 address, ``1:1001`` *not* an IPv6 address, and
``0aabbccdd0`` a WORD.  Keywords (``ack``, ``win``, ``mss``...) are returned as
WORD tokens; the parser recognises them by text where the grammar expects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "KEYWORDS",
    "PacketdrillSyntaxError",
    "Token",
    "TokenKind",
    "tokenize",
]


class PacketdrillSyntaxError(ValueError):
    """A script could not be parsed; ``str()`` is ``path:line: message`` as packetdrill prints."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class TokenKind(Enum):
    """Terminal symbols of parser.y (single characters are PUNCT)."""

    INTEGER = "INTEGER"
    HEX_INTEGER = "HEX_INTEGER"
    FLOAT = "FLOAT"
    WORD = "WORD"
    STRING = "STRING"
    BACK_QUOTED = "BACK_QUOTED"
    CODE = "CODE"
    OPTION = "OPTION"
    ELLIPSIS = "ELLIPSIS"
    IPV4_ADDR = "IPV4_ADDR"
    IPV6_ADDR = "IPV6_ADDR"
    PUNCT = "PUNCT"
    EOF = "EOF"


@dataclass(slots=True)
class Token:
    """One lexical token: kind, the value the parser uses, the source text and its line."""

    kind: TokenKind
    value: str
    text: str
    line: int
    end_line: int = field(default=0, compare=False)


# Words that lexer.l turns into reserved tokens; a --define never replaces these.
KEYWORDS: frozenset[str] = frozenset(
    """
    sa_family sin_port sin_addr msg_name msg_iov msg_flags msg_control cmsg_data
    cmsg_level cmsg_type ee_errno ee_origin ee_type ee_code ee_info ee_data scm_sec
    scm_nsec fd u32 u64 ptr events revents onoff linger htons ipv4 ipv6 icmp udp GREv0
    gre raw sum off key seq none checksum present mpls label tc ttl inet_addr
    inet6_addr ack eol ecr mss mtu nop sack sackOK md5 TS FO FOEXP tos flowlabel flags
    Flags val win urg wscale ect01 ect0 ect1 noecn ce id mut trun ins ip tcp ihl
    source_port
    """.split()
)

_WORD = re.compile(r"[A-Za-z0-9_]+")
_FLOAT = re.compile(r"-?[0-9]*\.[0-9]+")
_INTEGER = re.compile(r"-?[0-9]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL)
_BACK_QUOTED = re.compile(r"`(?:\\.|[^`\\])*`", re.DOTALL)

_SEG = r"[0-9a-fA-F]{1,4}"
_V4 = r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+"
# The alternatives v0..v12 of lexer.l; Python alternation is not longest-match, so
# the scanner tries each one and keeps the longest (see _match_ipv6).
_IPV6_ALTERNATIVES = [
    re.compile(p)
    for p in (
        r"::",
        rf"(?:{_SEG}:){{7}}{_SEG}",
        rf"(?:{_SEG}:){{1,7}}:",
        rf"(?:{_SEG}:){{1,6}}:{_SEG}",
        rf"(?:{_SEG}:){{1,5}}(?::{_SEG}){{1,2}}",
        rf"(?:{_SEG}:){{1,4}}(?::{_SEG}){{1,3}}",
        rf"(?:{_SEG}:){{1,3}}(?::{_SEG}){{1,4}}",
        rf"(?:{_SEG}:){{1,2}}(?::{_SEG}){{1,5}}",
        rf"{_SEG}:(?:(?::{_SEG}){{1,6}})",
        rf":(?::{_SEG}){{1,7}}",
        rf"::ffff:{_V4}",
        rf"::ffff:(?:0){{1,4}}:{_V4}",
        rf"(?:{_SEG}:){{1,4}}:{_V4}",
    )
]

# Fast path: a regex chosen by the first character, whose first matching
# alternative is flex's longest match.  A possible IPv6 address (every form
# contains "::" or has eight groups) is diverted by the "slow" lookahead to a full
# longest-match comparison.  Numbers and hex are refused when a word character
# follows, because then the WORD rule's match would be longer.
_SLOW = r"(?P<slow>(?=[0-9a-fA-F]{0,4}:)(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]))"
_SKIP_RE = re.compile(r"(?P<skip>(?:[ \t\r\n]+|//[^\n]*)+)|(?P<special>/\*)|(?P<PUNCT>/)")
_WORD_RE = re.compile(r"(?P<WORD>[A-Za-z0-9_]+)")
_NUMERIC_RE = re.compile(
    _SLOW
    + r"""
  | (?P<IPV4_ADDR>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)
  | (?P<FLOAT>[0-9]*\.[0-9]+)
  | (?P<HEX_INTEGER>0x[0-9a-fA-F]+(?![A-Za-z0-9_]))
  | (?P<INTEGER>[0-9]+(?![A-Za-z0-9_]))
  | (?P<WORD>[A-Za-z0-9_]+)
    """,
    re.VERBOSE,
)
_DOT_RE = re.compile(r"(?P<ELLIPSIS>\.\.\.)|(?P<FLOAT>\.[0-9]+)|(?P<PUNCT>\.)")
_DASH_RE = re.compile(
    r"(?P<OPTION>--[A-Za-z0-9_]+)|(?P<FLOAT>-[0-9]*\.[0-9]+)|(?P<INTEGER>-[0-9]+)|(?P<PUNCT>-)"
)
_COLON_RE = re.compile(_SLOW.replace("(?=[0-9a-fA-F]{0,4}:)", "") + r"|(?P<PUNCT>:)")
_QUOTE_RE = re.compile(r"(?P<special>.)")
_PERCENT_RE = re.compile(r"(?P<special>%\{)|(?P<PUNCT>%)")
_PUNCT_RE = re.compile(r"(?P<PUNCT>.)", re.DOTALL)

_RE_BY_FIRST_CHAR: dict[str, re.Pattern[str]] = {
    **dict.fromkeys(" \t\r\n/", _SKIP_RE),
    **dict.fromkeys("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ_", _WORD_RE),
    **dict.fromkeys("0123456789abcdefABCDEF", _NUMERIC_RE),
    ".": _DOT_RE,
    "-": _DASH_RE,
    ":": _COLON_RE,
    '"': _QUOTE_RE,
    "`": _QUOTE_RE,
    "%": _PERCENT_RE,
}
_KIND_BY_GROUP = {kind.value: kind for kind in TokenKind}


def _longest(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Length of ``pattern``'s match at ``pos`` (0 if none)."""
    m = pattern.match(text, pos)
    return m.end() - pos if m else 0


def _match_ipv6(text: str, pos: int) -> int:
    """Length of the longest IPv6-address match at ``pos``, like flex would choose."""
    return max(_longest(alt, text, pos) for alt in _IPV6_ALTERNATIVES)


class _Scanner:
    """State of one tokenization run: text, position and current line."""

    __slots__ = ("text", "path", "pos", "line", "tokens")

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []

    def error(self, line: int, near: str, message: str) -> PacketdrillSyntaxError:
        """A parse error in packetdrill's ``parse error at 'x': msg`` form."""
        return PacketdrillSyntaxError(self.path, line, f"parse error at '{near}': {message}")

    def emit(self, kind: TokenKind, value: str, length: int) -> None:
        """Append a token covering ``length`` characters and advance past it."""
        raw = self.text[self.pos : self.pos + length]
        newlines = raw.count("\n")
        self.tokens.append(Token(kind, value, raw, self.line, self.line + newlines))
        self.pos += length
        self.line += newlines

    def run(self) -> list[Token]:
        """Tokenize the whole text; the list ends with an EOF token."""
        text, tokens = self.text, self.tokens
        kinds, regex_for, punct = _KIND_BY_GROUP, _RE_BY_FIRST_CHAR.get, _PUNCT_RE
        n = len(text)
        pos, line = 0, 1
        while pos < n:
            m = regex_for(text[pos], punct).match(text, pos)
            assert m is not None  # every table regex matches its first character
            group = m.lastgroup
            if group == "skip":
                line += m.group().count("\n")
                pos = m.end()
            elif group == "special" or group == "slow":
                self.pos, self.line = pos, line
                if group == "special":
                    self.special(m.group())
                else:
                    self.word_or_number()
                pos, line = self.pos, self.line
            else:
                raw = m.group()
                value = raw[2:] if group == "OPTION" else raw
                tokens.append(Token(kinds[group], value, raw, line, line))
                pos = m.end()
        self.pos, self.line = pos, line
        tokens.append(Token(TokenKind.EOF, "", "", line, line))
        return tokens

    def special(self, opener: str) -> None:
        """Dispatch on a comment, code block, string or backquote opener."""
        if opener == "/*":
            self.c_comment()
        elif opener == "%{":
            self.code()
        elif opener == '"':
            self.quoted(_STRING, TokenKind.STRING, "unterminated string")
        else:
            self.quoted(_BACK_QUOTED, TokenKind.BACK_QUOTED, "unterminated backquoted command")

    def c_comment(self) -> None:
        """Skip a ``/* ... */`` comment."""
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            raise self.error(self.line, "/*", "unterminated comment")
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end + 2

    def code(self) -> None:
        """Scan a ``%{ ... }%`` Python snippet; the value is stripped of blanks/tabs."""
        end = self.text.find("}%", self.pos + 2)
        if end < 0:
            raise self.error(self.line, "%{", "unterminated %{ code }% block")
        body = self.text[self.pos + 2 : end].strip(" \t")
        self.emit(TokenKind.CODE, body, end + 2 - self.pos)

    def quoted(self, pattern: re.Pattern[str], kind: TokenKind, message: str) -> None:
        """Scan a "string" or `command`; the value is the raw text between delimiters."""
        m = pattern.match(self.text, self.pos)
        if m is None:
            raise self.error(self.line, self.text[self.pos], message)
        self.emit(kind, m.group()[1:-1], m.end() - self.pos)

    def word_or_number(self) -> None:
        """Slow path where an IPv6 address may start: pick the longest rule like flex."""
        text, pos = self.text, self.pos
        # Candidates in lexer.l rule order; the longest wins and, on equal length,
        # the earlier rule (so "123" is an INTEGER and "0x1f" a HEX_INTEGER).
        candidates = (
            (TokenKind.FLOAT, _longest(_FLOAT, text, pos)),
            (TokenKind.INTEGER, _longest(_INTEGER, text, pos)),
            (TokenKind.HEX_INTEGER, _longest(_HEX, text, pos)),
            (TokenKind.WORD, _longest(_WORD, text, pos)),
            (TokenKind.PUNCT, 1),
            (TokenKind.IPV4_ADDR, _longest(_IPV4, text, pos)),
            (TokenKind.IPV6_ADDR, _match_ipv6(text, pos)),
        )
        kind, best = TokenKind.PUNCT, 0
        for cand_kind, length in candidates:
            if length > best:
                kind, best = cand_kind, length
        self.emit(kind, text[pos : pos + best], best)


def tokenize(text: str, path: str = "<string>") -> list[Token]:
    """Split script text into tokens (comments and whitespace dropped), ending in EOF."""
    return _Scanner(text, path).run()
