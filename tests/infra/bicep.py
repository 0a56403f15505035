"""Just enough of Bicep to check infra/ from its text: declarations, object keys,
parameters. The Bicep CLI cannot be installed on these machines (it downloads a
binary), so these tests read the templates the way a reviewer would, and checkov's
parser (test_checkov.py) covers the grammar.

Bicep strings are single-quoted with backslash escapes and ``${...}`` interpolation;
comments are ``//`` and ``/* */``. ``code_only`` blanks out comments and the literal
parts of strings, keeping every offset, so the scanners never take a quoted or
commented bracket for structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:")
_OPEN = {"{": "}", "[": "]", "(": ")"}


def code_only(text: str) -> str:
    """``text`` with comments and the literal parts of strings replaced by spaces (newlines
    and every offset kept). The expressions of ``${...}`` interpolations stay: they are code."""
    return _blank(text, strings=True)


def without_comments(text: str) -> str:
    """``text`` with comments replaced by spaces; strings stay."""
    return _blank(text, strings=False)


def _blank(text: str, strings: bool) -> str:
    out = list(text)

    def blank(start: int, end: int) -> None:
        out[start:end] = [c if c == "\n" else " " for c in text[start:end]]

    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end)
        elif text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = n if end < 0 else end + 3
            if strings:
                blank(i + 3, end - 3)
        elif text[i] == "'":
            end = i + 1
            while end < n and text[end] != "'":
                if text[end] == "\\":
                    if strings:
                        blank(end, end + 2)
                    end += 2
                elif text.startswith("${", end):
                    closing = _interpolation_end(text, end + 2)
                    out[end + 2 : closing] = _blank(text[end + 2 : closing], strings)
                    end = closing + 1
                else:
                    if strings:
                        blank(end, end + 1)
                    end += 1
            end += 1
        else:
            end = i + 1
        i = end
    return "".join(out)


def _interpolation_end(text: str, start: int) -> int:
    """The index of the ``}`` that closes an interpolation whose expression starts at ``start``."""
    depth, i = 1, start
    while i < len(text):
        if text[i] == "'":
            i = text.index("'", i + 1) + 1
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unclosed interpolation at offset {start}")


def string_end(code: str, start: int) -> int:
    """The index just past the quote that closes the string whose ``'`` is at ``code[start]``
    (``code`` from code_only: literal parts blank, interpolations kept)."""
    if code.startswith("'''", start):
        return code.index("'''", start + 3) + 3
    i = start + 1
    while code[i] != "'":
        i = _interpolation_end(code, i + 2) + 1 if code.startswith("${", i) else i + 1
    return i + 1


def block_end(code: str, start: int) -> int:
    """The index just past the bracket that closes the one at ``code[start]``."""
    stack = [_OPEN[code[start]]]
    for i in range(start + 1, len(code)):
        if code[i] in _OPEN:
            stack.append(_OPEN[code[i]])
        elif code[i] == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
    raise ValueError(f"unbalanced {code[start]!r} at offset {start}")


def _value_end(code: str, start: int, limit: int) -> int:
    """The end of the value starting at ``start``: the end of its line, past any bracket it opens."""
    i = start
    while i < limit and code[i] != "\n":
        i = block_end(code, i) if code[i] in _OPEN else i + 1
    return i


def object_keys(text: str, start: int, code: str | None = None) -> dict[str, str]:
    """The keys of the object literal whose ``{`` is at ``text[start]``, each with its raw
    value. Nested ``resource`` declarations (child resources) are left out."""
    code = code_only(text) if code is None else code
    end = block_end(code, start) - 1
    keys: dict[str, str] = {}
    i = start + 1
    while True:
        while i < end and code[i].isspace():
            i += 1
        if i >= end:
            return keys
        if re.match(r"resource\s", text[i : i + 9]):
            i = block_end(code, code.index("{", i))
            continue
        if text[i] == "'":  # a quoted key: 'azd-service-name', or computed: '${identity.id}'
            closing = string_end(code, i)
            colon = re.compile(r"\s*:").match(text, closing)
            if colon is None:
                raise ValueError(f"cannot read an object key at {text[i : i + 40]!r}")
            key, value_start = text[i + 1 : closing - 1], colon.end()
        else:
            match = _KEY.match(text, i)
            if match is None:
                raise ValueError(f"cannot read an object key at {text[i : i + 40]!r}")
            key, value_start = match.group(1), match.end()
        value_end = _value_end(code, value_start, end)
        keys[key] = text[value_start:value_end].strip()
        i = value_end


def nested(raw_object: str, *path: str) -> dict[str, str]:
    """Follow ``path`` through an object literal's raw text (e.g. a value from object_keys)."""
    keys = object_keys(raw_object, code_only(raw_object).index("{"))
    for key in path:
        assert key in keys, f"no {key!r} among {sorted(keys)}"
        raw_object = keys[key]
        keys = object_keys(raw_object, code_only(raw_object).index("{"))
    return keys


def array_items(raw_array: str) -> list[str]:
    """The items of an array literal, raw: one per line as Bicep writes them, or separated
    by commas (``['a', 'b']``)."""
    code = code_only(raw_array)
    start = code.index("[")
    end = block_end(code, start) - 1
    items, i = [], start + 1
    while True:
        while i < end and (code[i].isspace() or code[i] == ","):
            i += 1
        if i >= end:
            return items
        item_end = _item_end(code, i, end)
        items.append(raw_array[i:item_end].strip())
        i = item_end


def _item_end(code: str, start: int, limit: int) -> int:
    """Like _value_end, but a top-level comma also ends the item."""
    i = start
    while i < limit and code[i] not in "\n,":
        i = block_end(code, i) if code[i] in _OPEN else i + 1
    return i


def string_value(raw: str) -> str | None:
    """The value of a plain single-quoted string literal (no interpolation), else None."""
    match = re.fullmatch(r"'((?:[^'\\$]|\\.)*)'", raw.strip())
    return match.group(1).replace("\\'", "'") if match else None


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None  # the raw default expression; None when the parameter is required
    allowed: tuple[str, ...]  # the raw items of @allowed([...]), if any


@dataclass(frozen=True)
class Declaration:
    kind: str  # resource | module
    symbol: str
    target: str  # 'type@version' of a resource, the path of a module
    existing: bool
    condition: str | None  # the expression of `= if (...)`
    loop: bool  # `= [for ...: {...}]`
    body: dict[str, str]  # the declared object's keys, raw values
    text: str
    start: int = 0  # offsets of the declaration in its template's text
    end: int = 0
    body_start: int = 0  # the offset of the body's `{`

    @property
    def type(self) -> str:
        return self.target.split("@")[0]


@dataclass(frozen=True)
class Template:
    path: Path
    text: str
    code: str

    @classmethod
    def load(cls, path: Path | str) -> Template:
        path = INFRA / path if isinstance(path, str) else path
        text = path.read_text(encoding="utf-8")
        return cls(path, text, code_only(text))

    @property
    def name(self) -> str:
        return self.path.relative_to(INFRA).as_posix() if self.path.is_relative_to(INFRA) else self.path.name

    def params(self) -> dict[str, Param]:
        params: dict[str, Param] = {}
        for match in re.finditer(rf"(?m)^param\s+({_IDENT})\s+({_IDENT})[ \t]*(=)?[ \t]*", self.code):
            name = match.group(1)
            default = None
            if match.group(3):
                default = self.text[match.end() : _value_end(self.code, match.end(), len(self.code))].strip()
            allowed = re.search(rf"@allowed\(\[([^\]]*)\]\)\s*(?:@[^\n]*\n\s*)*param\s+{name}\b", self.text)
            items = tuple(line.strip() for line in allowed.group(1).splitlines() if line.strip()) if allowed else ()
            params[name] = Param(name, match.group(2), default, items)
        return params

    def outputs(self) -> set[str]:
        return set(re.findall(rf"(?m)^output\s+({_IDENT})\s", self.code))

    def declarations(self) -> list[Declaration]:
        found = []
        pattern = re.compile(rf"(?m)^[ \t]*(resource|module)\s+({_IDENT})\s+'([^']*)'\s*(existing\s*)?=\s*")
        for match in pattern.finditer(self.text):
            if self.code[match.start(1) : match.end(1)] != match.group(1):
                continue  # in a comment
            i, condition, loop = match.end(), None, False
            if self.code.startswith("if", i):
                opening = self.code.index("(", i)
                closing = block_end(self.code, opening)
                condition = self.text[opening + 1 : closing - 1].strip()
                i = self.code.index("{", closing)
            elif self.code[i] == "[":
                loop = True
                i = self.code.index("{", i)
            end = block_end(self.code, i)
            body = object_keys(self.text, i, self.code)
            found.append(
                Declaration(
                    match.group(1),
                    match.group(2),
                    match.group(3),
                    bool(match.group(4)),
                    condition,
                    loop,
                    body,
                    self.text[match.start() : end],
                    match.start(),
                    end,
                    i,
                )
            )
        return found

    def declaration(self, symbol: str) -> Declaration:
        matches = [d for d in self.declarations() if d.symbol == symbol]
        assert len(matches) == 1, f"{self.name}: expected one declaration named {symbol}, found {len(matches)}"
        return matches[0]

    def of_type(self, resource_type: str) -> list[Declaration]:
        return [d for d in self.declarations() if d.kind == "resource" and d.type == resource_type]

    def var(self, name: str) -> str:
        match = re.search(rf"(?m)^var\s+{name}\s*=\s*", self.code)
        assert match is not None, f"{self.name}: no var {name}"
        return self.text[match.end() : _value_end(self.code, match.end(), len(self.code))].strip()


def templates() -> list[Template]:
    return [Template.load(path) for path in sorted(INFRA.rglob("*.bicep"))]


# ---------------------------------------------------------------- values as a tree


@dataclass(frozen=True)
class Obj:
    """An object literal. ``computed`` holds keys that are interpolations (``'${identity.id}'``)."""

    entries: dict[str, Value]
    computed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arr:
    """An array literal; a loop (``[for x in xs: {...}]``) is an array of its body."""

    items: tuple[Value, ...]
    loop: bool = False


@dataclass(frozen=True)
class Lit:
    """A literal: a string without interpolation, an integer, true, false or null."""

    value: str | int | bool | None


@dataclass(frozen=True)
class Expr:
    """Anything computed. ``branches`` are the values a conditional (``c ? a : b``) may take."""

    text: str
    branches: tuple[Value, ...] = ()


Value = Obj | Arr | Lit | Expr


def parse_value(raw: str) -> Value:
    """The value of a Bicep expression as a tree: literals where the text has them, ``Expr``
    for everything computed (parameters, variables, function calls, references)."""
    raw = raw.strip()
    code = code_only(raw)
    if raw[:1] in ("{", "[") and block_end(code, 0) == len(raw):
        if raw[0] == "{":
            keys = object_keys(raw, 0, code)
            entries = {key: parse_value(value) for key, value in keys.items() if "${" not in key}
            return Obj(entries, tuple(key for key in keys if "${" in key))
        loop = re.match(r"\[\s*for\b", code)
        if loop:
            colon = _top_level(code, ":", loop.end(), len(code) - 1)
            return Arr((parse_value(raw[colon + 1 : -1]),), loop=True)
        return Arr(tuple(parse_value(item) for item in array_items(raw)))
    literal = string_value(raw)
    if literal is not None:
        return Lit(literal)
    if raw.startswith("'''") and raw.endswith("'''") and "${" not in raw:
        return Lit(raw[3:-3])
    if re.fullmatch(r"-?\d+", raw):
        return Lit(int(raw))
    if raw in ("true", "false"):
        return Lit(raw == "true")
    if raw == "null":
        return Lit(None)
    question = _top_level(code, "?", 0, len(code))
    if question >= 0:
        colon = _top_level(code, ":", question + 1, len(code))
        if colon >= 0:
            return Expr(raw, (parse_value(raw[question + 1 : colon]), parse_value(raw[colon + 1 :])))
    return Expr(raw)


def _top_level(code: str, char: str, start: int, end: int) -> int:
    """The offset of ``char`` outside any bracket in ``code[start:end]``, or -1. For ``?``,
    the coalescing ``??`` and the safe dereference ``?.`` and ``?[`` do not count."""
    i = start
    while i < end:
        c = code[i]
        if c in _OPEN:
            i = block_end(code, i)
            continue
        if c == "'":
            i = string_end(code, i)
            continue
        if c == char:
            if char == "?" and (code[i + 1 : i + 2] in ("?", ".", "[") or code[i - 1 : i] == "?"):
                i += 2
                continue
            return i
        i += 1
    return -1
