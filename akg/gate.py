"""The lexical layer of the read-only gate: what a read-only query may contain, decided before anything is sent.

One left-to-right scan splits the text into comments, strings, quoted names, numbers, words and
punctuation, so that a quote inside a comment (or a comment marker inside a string) cannot hide
code. Two rules make the scan's reading the one that counts, whatever the server's lexer thinks:

- **The server runs what was checked.** Comments are removed (each replaced by a space) from the
  text that is sent, so a server that ends a comment somewhere else than the scan did (a bare
  carriage return, a Unicode line separator, a nested `/*`) cannot find code the scan never saw.
- **Where the scan cannot be sure, it refuses.** Control characters other than tab and line breaks,
  invisible format characters (zero-width, bidi controls), Unicode line and paragraph separators
  and NEL are refused anywhere; outside strings and backtick-quoted names only ASCII is accepted;
  a number glued to a word (`1e5SET`, `0xFFSET`: lexers split those differently), a backslash in a
  quoted name and `/*` inside a block comment are refused.

Then: the statement must begin with a reading clause; write, schema and administration keywords
are refused wherever they stand (`LOAD CSV` would read the server's files); a procedure may be
called only from a short list of read procedures (ArcadeDB's `do.when` runs any command); `SHOW`
only lists indexes, constraints, functions or procedures (not users, settings or others'
transactions); one statement at a time; no EXPLAIN (ArcadeDB executes schema commands under it) or
PROFILE. The server-side layers (akg.readonly) stand behind this one.
"""

from __future__ import annotations

import re
import unicodedata

from akg.errors import QueryRefused

READ_LEADS = {"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL", "SHOW"}
# Keywords that have no place in a read: refused wherever they stand outside strings and comments.
# (LOAD: `LOAD CSV FROM 'file:///...'` reads the server's files, credentials included; USE: another
# database on the same server.)
WRITE_WORDS = {"CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "LOAD", "FOREACH", "ALTER",
               "GRANT", "DENY", "REVOKE", "RENAME", "TERMINATE", "START", "STOP", "ENABLE", "DEALLOCATE",
               "REALLOCATE", "USE", "IMPORT", "INSERT", "UPDATE", "TRUNCATE"}
# Procedures may do anything (ArcadeDB's `do.when` runs schema commands), so only these are callable.
READ_PROCEDURES = {"db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
                   "db.schema.nodetypeproperties", "db.schema.reltypeproperties", "dbms.components", "db.info"}
# SHOW may list the schema and what can be called; not users, databases, settings or transactions.
SHOW_NOUNS = {"INDEX", "INDEXES", "CONSTRAINT", "CONSTRAINTS", "FUNCTION", "FUNCTIONS", "PROCEDURE", "PROCEDURES"}
SHOW_MODIFIERS = {"ALL", "RANGE", "TEXT", "POINT", "LOOKUP", "FULLTEXT", "VECTOR", "UNIQUE", "UNIQUENESS",
                  "EXISTENCE", "EXIST", "KEY", "NODE", "REL", "RELATIONSHIP", "PROPERTY", "TYPE", "BUILTIN",
                  "USER", "DEFINED", "EXECUTABLE", "BY", "CURRENT"}
SHOW_ENDS = {"YIELD", "WHERE", "RETURN"}

# Line comments end at CR or LF, as on both servers; the server never sees them anyway.
_TOKENS = re.compile(r"""
    (?P<comment>//[^\r\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>`[^`]*`)
  | (?P<unterminated>/\*|['"`])
  | (?P<number>0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<semicolon>;)
  | (?P<space>[ \t\r\n]+)
  | (?P<other>.)
""", re.S | re.X)
_GLUE = re.compile(r"[A-Za-z0-9_]")
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def _character_problem(text: str) -> str | None:
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category in ("Cf", "Zl", "Zp"):
            name = unicodedata.name(ch, "a control character")
            return (f"the query contains {name} (U+{ord(ch):04X}) at character {i + 1}: invisible and control "
                    "characters are refused (servers disagree on where they end a comment or a word); "
                    "pass such values as parameters")
    return None


def _refuse(problem: str) -> QueryRefused:
    return QueryRefused(f"read-only: {problem}. The graph is unchanged.")


def checked_text(text: str) -> str:
    """Refuse what a read-only query cannot contain (layer 1); return the text to send: the same
    statement with its comments replaced by spaces."""
    problem = _character_problem(text)
    if problem:
        raise _refuse(problem)
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(text)]
    code = [(kind, value) for kind, value in tokens if kind not in ("comment", "space")]
    for index, (kind, value) in enumerate(tokens):
        if kind == "unterminated":
            raise QueryRefused("the query has an unterminated string, quoted name or comment")
        if kind == "comment" and value.startswith("/*") and "/*" in value[2:]:
            raise _refuse("a block comment inside a block comment (servers end such comments differently)")
        if kind == "name" and "\\" in value:
            raise _refuse(f"a backslash in the quoted name {value} (servers read it differently)")
        if kind == "other" and not value.isascii():
            raise _refuse(f"the character {value!r} (U+{ord(value):04X}) outside a string: outside strings only "
                          "ASCII is accepted; quote such names in backticks")
        if kind == "number" and index + 1 < len(tokens) and _GLUE.match(tokens[index + 1][1][:1]):
            raise _refuse(f"the number {value} runs into {tokens[index + 1][1]!r} (write a space between them)")
    if not code:
        raise QueryRefused("the query is empty")
    if any(kind == "semicolon" for kind, _ in code[:-1]):
        raise QueryRefused("one statement at a time: the query contains ';'")
    lead = code[0][1].upper()
    if lead in {"EXPLAIN", "PROFILE"}:
        raise QueryRefused(f"{lead} is not offered here: EXPLAIN executes schema commands on the embedded server, "
                           "and PROFILE runs the query")
    if code[0][0] != "word" or lead not in READ_LEADS:
        raise _refuse(f"a query may not begin with {code[0][1]!r}; it must begin with one of "
                      f"{', '.join(sorted(READ_LEADS))}")
    for i, (kind, value) in enumerate(code):
        if kind != "word":
            continue
        word = value.upper()
        if word in WRITE_WORDS:
            raise _refuse(f"{word} is not allowed in a query here")
        if word == "CALL":
            _check_call(code, i)
        elif word == "SHOW":
            _check_show(code, i)
    return "".join(" " if kind == "comment" else value for kind, value in tokens)


def _check_call(code: list[tuple[str, str]], i: int) -> None:
    following = code[i + 1] if i + 1 < len(code) else ("end", "")
    if following == ("other", "{"):
        return  # a subquery: its clauses are checked like the rest
    # the procedure's name, however it is written: db.labels, `db.labels`, db.`labels`
    parts, j = [], i + 1
    while j < len(code) and (code[j][0] in ("word", "name") or code[j] == ("other", ".")):
        parts.append(code[j][1].strip("`"))
        j += 1
    procedure = "".join(parts)
    if procedure.lower() not in READ_PROCEDURES:
        raise _refuse(f"procedure {procedure or '(none)'!r} is not on the list of read procedures "
                      f"({', '.join(sorted(READ_PROCEDURES))})")


def _check_show(code: list[tuple[str, str]], i: int) -> None:
    words = []
    for kind, value in code[i + 1:]:
        if kind == "semicolon" or (kind == "word" and value.upper() in SHOW_ENDS):
            break
        words.append(value.upper() if kind == "word" else value)
    if not (set(words) & SHOW_NOUNS) or not set(words) <= SHOW_NOUNS | SHOW_MODIFIERS:
        raise _refuse(f"SHOW {' '.join(words)}: only SHOW INDEXES, CONSTRAINTS, FUNCTIONS or PROCEDURES "
                      "are offered here")
