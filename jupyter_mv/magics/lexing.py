"""Reading a magic's line: shell-style words with comments (`_lex`), IPython's `$name` expansion
(`_expand`), and quoting a word back (`_quote`) so a line the magics print reads back as written."""

from __future__ import annotations

import shlex

from IPython.core.error import UsageError


def _lex(line: str, comments: bool = True) -> list[tuple[str, bool]]:
    """Split a magic's line as a POSIX shell does, with comments: (word, quoted) pairs.

    Quoting follows `shlex.split(posix=True)` (single quotes literal; in double quotes a backslash
    escapes only `"` and `\\`; outside quotes it escapes any character). A `#` that starts a word
    outside quotes begins a comment running to the end of the line, as in bash, so
    `-t baseline  # v1` drops the comment while `-t run#2` and `-m "a # b"` keep their `#`.
    `quoted` tells a word that was (partly) quoted or escaped, so `'--weird'` stays a value.
    Raises ValueError on an unclosed quote or a trailing backslash."""
    return _scan(line, comments)[0]


def _code_part(line: str) -> str:
    """`line` without its trailing comment (the rules of `_lex`); unchanged if it does not lex."""
    try:
        return line[: _scan(line, True)[1]]
    except ValueError:
        return line


def _scan(line: str, comments: bool) -> tuple[list[tuple[str, bool]], int]:
    """The words of `line` and where its comment starts (len(line) when it has none)."""
    words: list[tuple[str, bool]] = []
    buf: list[str] = []
    in_word = quoted = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            if in_word:
                words.append(("".join(buf), quoted))
                buf, in_word, quoted = [], False, False
            i += 1
        elif c == "#" and not in_word and comments:
            return words, i
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            buf.append(line[i + 1:end])
            in_word = quoted = True
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("No closing quotation")
                ch = line[i]
                if ch == '"':
                    break
                if ch == "\\" and i + 1 < n and line[i + 1] in '"\\':
                    i += 1
                    ch = line[i]
                buf.append(ch)
                i += 1
            in_word = quoted = True
            i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            buf.append(line[i + 1])
            in_word = quoted = True
            i += 2
        else:
            buf.append(c)
            in_word = True
            i += 1
    if in_word:
        words.append(("".join(buf), quoted))
    return words, n


def _expand(shell, text: str, local_ns: dict | None) -> str:
    """IPython's `$name` / `{expr}` expansion of a magic line (what InteractiveShell.var_expand does),
    applied after the comment is cut off: IPython gives up on the whole line when any part of it
    fails to expand, and a comment such as `# restore {old}` would stop `$ref` from expanding."""
    if shell is None:
        return text
    ns = dict(shell.user_ns)
    ns.update(local_ns or {})
    try:
        from IPython.utils.text import DollarFormatter

        return DollarFormatter().vformat(text, args=[], kwargs=ns)
    except Exception:  # as IPython does: leave the text as written
        return text


def _split(line: str, prog: str, comments: bool = True) -> list[tuple[str, bool]]:
    try:
        return _lex(line, comments)
    except ValueError as e:
        raise UsageError(f"{prog}: cannot parse arguments ({e}); check the quotes") from None



def _quote(text: str) -> str:
    return shlex.quote(text)
