"""The few shell commands a packetdrill script may point at the host's /proc: ``cat`` and
``grep`` of /proc/net/tcp and /proc/net/tcp6, alone or piped into one another.

packetdrill runs a backquoted command with ``system()`` and fails the script when it exits
non-zero; a pipeline exits as its last command does, so ``grep " 0A " /proc/net/tcp | grep
":1F90"`` fails the script when no listener on port 8080 is there. Here the files are the
simulated host's (tools/procnet.py) and the commands are evaluated in Python with GNU grep's
meaning: exit 0 when a line was selected, 1 when none was, 2 on a usage error; ``file:``
prefixes when more than one file is searched. Supported grep options: -v -c -q -s -i -E -F
-G -w -x -h -H -n and -e PATTERN; anything else leaves the command unsupported (the script
is skipped, as for any shell command tcpdive cannot emulate).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..tools.procnet import PROC_FILES

_GREP_FLAGS = frozenset("vcqsiEFGwxhHn")
_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "xdigit": "0-9A-Fa-f", "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~",
    "print": r" -~", "graph": r"!-~", "cntrl": r"\x00-\x1f\x7f",
}


class GrepArgs:
    """grep's parsed command line."""

    __slots__ = ("flags", "patterns", "files")

    def __init__(self, flags: set[str], patterns: list[str], files: list[str]) -> None:
        self.flags = flags
        self.patterns = patterns
        self.files = files


def parse_grep(args: list[str]) -> GrepArgs | None:
    """grep's options and operands (GNU getopt order: options may follow operands); None for
    an option tcpdive does not emulate."""
    flags: set[str] = set()
    patterns: list[str] = []
    operands: list[str] = []
    i = 0
    only_operands = False
    while i < len(args):
        a = args[i]
        i += 1
        if only_operands or a == "-" or not a.startswith("-"):
            operands.append(a)
            continue
        if a == "--":
            only_operands = True
            continue
        if a.startswith("--"):
            return None
        j = 1
        while j < len(a):
            c = a[j]
            if c == "e":
                rest = a[j + 1:]
                if rest:
                    patterns.append(rest)
                elif i < len(args):
                    patterns.append(args[i])
                    i += 1
                else:
                    return None
                break
            if c not in _GREP_FLAGS:
                return None
            flags.add(c)
            j += 1
    if not patterns:
        if not operands:
            return None
        patterns.append(operands.pop(0))
    return GrepArgs(flags, patterns, operands)


def parse_cat(args: list[str]) -> list[str] | None:
    """cat's file operands (no options emulated); None if it has options."""
    if any(a.startswith("-") and a != "-" for a in args):
        return None
    return list(args)


def is_proc_read(prog: str, args: list[str], piped: bool) -> bool:
    """True for a ``cat`` or ``grep`` this module evaluates: its files are all /proc/net/tcp or
    /proc/net/tcp6, or it has none and reads the pipe (``piped``)."""
    if prog == "cat":
        files = parse_cat(args)
    elif prog == "grep":
        g = parse_grep(args)
        files = g.files if g is not None else None
    else:
        return False
    if files is None:
        return False
    if not files:
        return piped
    return all(f in PROC_FILES for f in files)


def _bracket(p: str, i: int) -> tuple[str, int]:
    """A POSIX bracket expression starting at ``p[i] == '['``, as a Python class; the index
    after it. Backslash is an ordinary character inside it, as POSIX says."""
    j = i + 1
    out = "["
    if j < len(p) and p[j] == "^":
        out += "^"
        j += 1
    first = True
    while j < len(p):
        c = p[j]
        if c == "]" and not first:
            return out + "]", j + 1
        first = False
        if c == "[" and p.startswith("[:", j):
            end = p.find(":]", j + 2)
            if end > 0 and p[j + 2:end] in _CLASSES:
                out += _CLASSES[p[j + 2:end]]
                j = end + 2
                continue
        out += "\\" + c if c in "\\[]^" else c
        j += 1
    raise ValueError("unmatched [")


def posix_to_python(pattern: str, extended: bool) -> str:
    """A POSIX basic (GNU grep -G) or extended (-E) regular expression in Python's syntax."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[":
            cls, i = _bracket(pattern, i)
            out.append(cls)
            continue
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            i += 2
            if not extended and d in "(){}|+?":
                out.append(d)                     # \( \) \{ \} \| \+ \? are BRE operators
            elif d in "<>":
                out.append(r"\b")
            else:
                out.append("\\" + d)
            continue
        i += 1
        if not extended and c in "(){}|+?":
            out.append("\\" + c)                  # literal in a BRE
        elif not extended and c == "*" and (not out or out[-1] in ("^", "\\(", "(")):
            out.append(r"\*")                     # a leading * is literal in a BRE
        else:
            out.append(c)
    return "".join(out)


def grep_regex(g: GrepArgs) -> re.Pattern[str]:
    """The compiled pattern of a grep command line (-F, -E/-G, -i, -w, -x)."""
    if "F" in g.flags:
        parts = [re.escape(p) for p in g.patterns]
    else:
        parts = [posix_to_python(p, "E" in g.flags) for p in g.patterns]
    body = "|".join(f"(?:{p})" for p in parts)
    if "x" in g.flags:
        body = f"^(?:{body})$"
    elif "w" in g.flags:
        body = rf"(?<!\w)(?:{body})(?!\w)"
    return re.compile(body, re.IGNORECASE if "i" in g.flags else 0)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def run_grep(g: GrepArgs, stdin: str, read: Callable[[str], str | None]) -> tuple[int, str]:
    """GNU grep over ``stdin`` or its files: (exit status, standard output)."""
    try:
        rx = grep_regex(g)
    except (re.error, ValueError):
        return 2, ""
    invert = "v" in g.flags
    sources = g.files or ["-"]
    prefix = ("H" in g.flags or len(sources) > 1) and "h" not in g.flags
    out: list[str] = []
    selected = 0
    status_err = False
    for name in sources:
        text = stdin if name == "-" else read(name)
        if text is None:
            status_err = True
            continue
        label = "(standard input)" if name == "-" else name
        count = 0
        for num, line in enumerate(_lines(text), 1):
            if (rx.search(line) is not None) != invert:
                count += 1
                if "q" in g.flags:
                    return 0, ""
                if "c" not in g.flags:
                    head = f"{label}:" if prefix else ""
                    if "n" in g.flags:
                        head += f"{num}:"
                    out.append(head + line)
        if "c" in g.flags:
            out.append((f"{label}:" if prefix else "") + str(count))
        selected += count
    text = "".join(line + "\n" for line in out)
    if status_err and not ("q" in g.flags and selected):
        return 2, text
    return (0 if selected else 1), text


def run_pipeline(commands: list[list[str]], read: Callable[[str], str | None]) -> tuple[int, str]:
    """Run ``cat``/``grep`` commands joined by pipes: (the last one's status, its output)."""
    data = ""
    status = 0
    for words in commands:
        prog = words[0].rsplit("/", 1)[-1]
        if prog == "cat":
            files = parse_cat(words[1:]) or ["-"]
            parts = []
            status = 0
            for f in files:
                t = data if f == "-" else read(f)
                if t is None:
                    status = 1
                    continue
                parts.append(t)
            data = "".join(parts)
        else:
            g = parse_grep(words[1:])
            if g is None:
                return 2, ""
            status, data = run_grep(g, data, read)
    return status, data


__all__ = ["is_proc_read", "parse_grep", "parse_cat", "posix_to_python", "grep_regex",
           "run_grep", "run_pipeline", "GrepArgs"]
