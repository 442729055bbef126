"""A subset of Xero's `where` and `order` languages, compiled once into Python callables.

Supported: == (or =), !=, >, <, >=, <=, AND/&&, OR/||, NOT/!, parentheses, "strings", numbers,
true/false/null, Guid("..."), DateTime(y,m,d[,h,m,s]), and the string methods Contains, StartsWith,
EndsWith, ToLower, ToUpper on dotted fields (Contact.ContactID). String comparisons ignore case, as
Xero's do. Anything else raises QueryError, which the handlers answer with a 400.

A string literal has no escape for `"`: real Xero answers `Name=="Acme \\"Quoted\\" Ltd"` with a 400
QueryParseException "Syntax error" whichever way the quote is escaped (XeroAPI/Xero-Java issue 347;
waynerobinson/xeroizer issue 160), so the sandbox does too; a backslash inside a string is an
ordinary character. Names that carry a `"` are found with `searchTerm` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

Resolver = Callable[[dict, str], object]
Predicate = Callable[[dict], bool]


class QueryError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|&&|\|\||[=<>!(),.])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_METHODS = {"Contains", "StartsWith", "EndsWith", "ToLower", "ToUpper"}
_COMPARISONS = {"==", "=", "!=", ">", "<", ">=", "<="}


def _tokenize(text: str) -> list[tuple[str, object]]:
    tokens: list[tuple[str, object]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(f"Unexpected character at position {position} in where clause")
        position = match.end()
        if match["string"] is not None:
            tokens.append(("value", match["string"][1:-1]))
        elif match["number"] is not None:
            tokens.append(("value", Decimal(match["number"])))
        elif match["op"] is not None:
            tokens.append(("op", match["op"]))
        else:
            tokens.append(("name", match["name"]))
    return tokens


def _normalise(value: object) -> object:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return value


def _compare(op: str, left: object, right: object) -> bool:
    left, right = _normalise(left), _normalise(right)
    if op in ("==", "="):
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        if op == ">":
            return left > right
        if op == "<":
            return left < right
        if op == ">=":
            return left >= right
        return left <= right
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, fields: set[str], resolve: Resolver) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = {field.casefold(): field for field in fields}
        self.resolve = resolve

    def peek(self) -> tuple[str, object] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, object]:
        token = self.peek()
        if token is None:
            raise QueryError("Unexpected end of where clause")
        self.index += 1
        return token

    def expect(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise QueryError(f"Expected '{op}' in where clause")

    def at(self, *ops: str) -> bool:
        token = self.peek()
        if token is None:
            return False
        kind, value = token
        return (kind == "op" and value in ops) or (kind == "name" and str(value).upper() in ops)

    def parse(self) -> Predicate:
        node = self.parse_or()
        if self.peek() is not None:
            raise QueryError("Unexpected text after the end of the where clause")
        return lambda entity: bool(node(entity))

    def parse_or(self):
        left = self.parse_and()
        while self.at("||", "OR"):
            self.take()
            right = self.parse_and()
            left = (lambda a, b: lambda e: bool(a(e)) or bool(b(e)))(left, right)
        return left

    def parse_and(self):
        left = self.parse_not()
        while self.at("&&", "AND"):
            self.take()
            right = self.parse_not()
            left = (lambda a, b: lambda e: bool(a(e)) and bool(b(e)))(left, right)
        return left

    def parse_not(self):
        if self.at("!", "NOT"):
            self.take()
            inner = self.parse_not()
            return lambda e: not inner(e)
        return self.parse_comparison()

    def parse_comparison(self):
        left = self.parse_operand()
        if self.peek() is not None and self.peek()[0] == "op" and self.peek()[1] in _COMPARISONS:
            op = self.take()[1]
            right = self.parse_operand()
            return lambda e: _compare(op, left(e), right(e))
        return left

    def parse_operand(self):
        kind, value = self.take()
        if kind == "value":
            return lambda e: value
        if kind == "op" and value == "(":
            inner = self.parse_or()
            self.expect(")")
            return inner
        if kind != "name":
            raise QueryError(f"Unexpected '{value}' in where clause")
        word = str(value)
        upper = word.upper()
        if upper in ("TRUE", "FALSE"):
            constant = upper == "TRUE"
            return lambda e: constant
        if upper == "NULL":
            return lambda e: None
        if self.at("(") and word in ("Guid", "DateTime"):
            return self.parse_constructor(word)
        return self.parse_field(word)

    def parse_constructor(self, word: str):
        self.expect("(")
        args = [self.take()[1]]
        while self.at(","):
            self.take()
            args.append(self.take()[1])
        self.expect(")")
        if word == "Guid":
            if len(args) != 1 or not isinstance(args[0], str):
                raise QueryError('Guid() takes one "string"')
            guid = args[0].lower()
            return lambda e: guid
        try:
            parts = [int(arg) for arg in args]
            moment = datetime(*parts, tzinfo=UTC)
        except (TypeError, ValueError) as exc:
            raise QueryError("DateTime() takes year, month, day[, hour, minute, second]") from exc
        return lambda e: moment

    def parse_field(self, first: str):
        canonical = self.fields.get(first.casefold())
        if canonical is None:
            raise QueryError(f"No property or field '{first}' exists in this type")
        path = [canonical]
        calls: list[tuple[str, object]] = []
        while self.at("."):
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise QueryError("Expected a name after '.' in where clause")
            if name in _METHODS:
                self.expect("(")
                argument = None
                if not self.at(")"):
                    kind, argument = self.take()
                    if kind != "value" or not isinstance(argument, str):
                        raise QueryError(f'{name}() takes a "string"')
                self.expect(")")
                calls.append((name, argument))
            elif calls:
                raise QueryError("Unexpected property after a method call")
            else:
                path.append(str(name))
        dotted = ".".join(path)
        resolve = self.resolve

        def value(entity: dict) -> object:
            result = resolve(entity, dotted)
            for method, argument in calls:
                result = _call(method, result, argument)
            return result

        return value


def _call(method: str, value: object, argument: object) -> object:
    if value is None:
        return False if method in ("Contains", "StartsWith", "EndsWith") else None
    text = str(value)
    if method == "ToLower":
        return text.lower()
    if method == "ToUpper":
        return text.upper()
    needle = str(argument).casefold()
    haystack = text.casefold()
    if method == "Contains":
        return needle in haystack
    if method == "StartsWith":
        return haystack.startswith(needle)
    return haystack.endswith(needle)


def compile_where(text: str | None, fields: Iterable[str], resolve: Resolver) -> Predicate | None:
    if text is None or not text.strip():
        return None
    return _Parser(text, set(fields), resolve).parse()


def compile_order(text: str | None, fields: Iterable[str], resolve: Resolver) -> Callable[[list], list] | None:
    """`Field [ASC|DESC], ...` as a function that sorts a list (stable, None first)."""
    if text is None or not text.strip():
        return None
    known = {field.casefold(): field for field in fields}
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError(f"Invalid order clause '{text}'")
        field = words[0]
        first = field.split(".")[0].casefold()
        if first not in known:
            raise QueryError(f"No property or field '{field}' exists in this type")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"Invalid order direction '{words[1]}'")
        keys.append((".".join([known[first], *field.split(".")[1:]]), direction == "DESC"))

    def sort(items: list) -> list:
        ordered = list(items)
        for field, descending in reversed(keys):

            def key(entity, field=field):
                value = _normalise(resolve(entity, field))
                return (value is not None, value if value is not None else 0)

            ordered.sort(key=key, reverse=descending)
        return ordered

    return sort
