"""docs/protocol.md and chatserver/protocol.py stay in step: every name in the code is documented
in its place, and the error catalogue documents no code the code lacks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import msgspec
import pytest

from chatserver import protocol
from chatserver.protocol import GATEWAY_ERRORS, PUSHES, SCHEMAS, CloseCode, ErrorCode, Event, Push
from rooms.errors import REFUSAL_DESCRIPTIONS, RefusalCode

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

CLIENT_EVENTS = "Client events"
SERVER_PUSHES = "Server pushes"
CATALOGUE = "Error-code catalogue"
GATEWAY_TABLE = "Gateway codes"
REFUSAL_TABLE = "Rooms refusal codes"
CLOSE_CODES = "Close codes"
LIMITS = "Limits"

TICKED = re.compile(r"`([^`]+)`")
CODE_LIKE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Section:
    level: int
    title: str
    lines: list[str] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines + [child.text for child in self.children])

    def child(self, title: str) -> Section:
        found = [c for c in self.children if c.title == title]
        assert found, f"docs/protocol.md: no heading {'#' * (self.level + 1)} {title!r}"
        return found[0]


def parse(markdown: str) -> Section:
    """Split markdown into a tree of `## ` and `### ` sections (fenced code is not a heading)."""
    root = Section(1, "")
    stack = [root]
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{2,3}) (.+?)\s*$", line)
        if match is None:
            stack[-1].lines.append(line)
            continue
        level = len(match.group(1))
        while stack[-1].level >= level:
            stack.pop()
        section = Section(level, match.group(2))
        stack[-1].children.append(section)
        stack.append(section)
    return root


def table_rows(text: str) -> list[list[str]]:
    """Cells of every markdown table row in `text`, separator rows left out."""
    rows = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|") or re.fullmatch(r"\|[\s|:-]+\|", stripped):
            continue
        # Escaped pipes (`\|`) stay inside their cell.
        cells = re.split(r"(?<!\\)\|", stripped.strip("|"))
        rows.append([c.strip() for c in cells])
    return rows


def first_column(section: Section) -> dict[str, list[str]]:
    """Backticked names in the first cell of each table row -> that row's cells."""
    found: dict[str, list[str]] = {}
    for cells in table_rows(section.text):
        for name in TICKED.findall(cells[0]):
            found.setdefault(name, cells)
    return found


def section_for(parent: Section, name: str) -> Section | None:
    """The subsection whose heading names `name` in backticks."""
    for child in parent.children:
        if f"`{name}`" in child.title:
            return child
    return None


def report(what: str, missing: list[str]) -> str:
    return f"docs/protocol.md is out of step with the code: {what}:\n  " + "\n  ".join(missing)


@pytest.fixture(scope="module")
def doc() -> Section:
    return parse(DOC.read_text(encoding="utf-8"))


def test_every_event_has_a_section_with_its_fields(doc: Section) -> None:
    events = doc.child(CLIENT_EVENTS)
    missing = []
    for event in Event:
        section = section_for(events, event.value)
        if section is None:
            missing.append(
                f"event {event.value!r}: no '### `{event.value}`' under '## {CLIENT_EVENTS}'"
            )
            continue
        documented = first_column(section)
        for f in msgspec.structs.fields(SCHEMAS[event]):
            if f.encode_name not in documented:
                missing.append(
                    f"event {event.value!r}: field {f.encode_name!r} missing from its field table"
                )
    assert not missing, report("client events and payload fields", missing)


def test_no_documented_field_the_schema_lacks(doc: Section) -> None:
    events = doc.child(CLIENT_EVENTS)
    extra = []
    for event in Event:
        section = section_for(events, event.value)
        if section is None:
            continue  # reported by the test above
        # The payload table is the first table of the section: its header starts with "Field"
        # and it carries a "Required" column (ack tables do not).
        payload_rows: list[list[str]] = []
        in_payload = False
        for cells in table_rows(section.text):
            if cells[0] == "Field":
                if payload_rows or in_payload:
                    break
                in_payload = "Required" in cells
                continue
            if in_payload:
                payload_rows.append(cells)
        schema_fields = {f.encode_name for f in msgspec.structs.fields(SCHEMAS[event])}
        for cells in payload_rows:
            for name in TICKED.findall(cells[0]):
                if name not in schema_fields:
                    extra.append(
                        f"event {event.value!r}: documents field {name!r} not in the schema"
                    )
    assert not extra, report("documented payload fields the code lacks", extra)


def test_every_push_has_a_section(doc: Section) -> None:
    pushes = doc.child(SERVER_PUSHES)
    missing = [
        f"push {push.value!r}: no '### `{push.value}`' under '## {SERVER_PUSHES}'"
        for push in Push
        if section_for(pushes, push.value) is None
    ]
    assert not missing, report("server pushes", missing)


def test_catalogue_lists_every_code_with_its_description(doc: Section) -> None:
    catalogue = doc.child(CATALOGUE)
    tables: list[tuple[str, type[Enum], dict[str, str]]] = [
        (GATEWAY_TABLE, ErrorCode, {str(k): v for k, v in GATEWAY_ERRORS.items()}),
        (REFUSAL_TABLE, RefusalCode, {str(k): v for k, v in REFUSAL_DESCRIPTIONS.items()}),
    ]
    missing = []
    for title, enum, descriptions in tables:
        rows = first_column(catalogue.child(title))
        for member in enum:
            code = str(member.value)
            if code not in rows:
                missing.append(f"{enum.__name__}.{member.name} ({code!r}) missing from '{title}'")
                continue
            description = descriptions.get(code)
            if description is None:
                missing.append(f"{enum.__name__}.{member.name} has no description in the code")
            elif description not in " | ".join(rows[code]):
                missing.append(
                    f"{code!r} in '{title}': meaning should read {description!r} (from the code)"
                )
    assert not missing, report("the error-code catalogue", missing)


def test_catalogue_documents_no_code_the_code_lacks(doc: Section) -> None:
    catalogue = doc.child(CATALOGUE)
    known_codes = {str(c) for c in ErrorCode} | {str(c) for c in RefusalCode}
    known_events = {str(e) for e in Event}
    unknown = []
    for cells in table_rows(catalogue.text):
        if cells[0] == "Code":
            continue
        for token in TICKED.findall(cells[0]):
            if CODE_LIKE.match(token) and token not in known_codes:
                unknown.append(
                    f"code {token!r} is in the catalogue but in neither ErrorCode nor RefusalCode"
                )
        for token in TICKED.findall(cells[-1]):
            if token not in known_events | known_codes:
                unknown.append(
                    f"{cells[0]} is 'returned by' {token!r}: neither an Event nor a code"
                )
    assert not unknown, report("the catalogue names things the code lacks", unknown)


def test_close_codes_with_their_numbers(doc: Section) -> None:
    rows = table_rows(doc.child(CLOSE_CODES).text)
    missing = []
    for code in CloseCode:
        if not any(f"`{code.name}`" in cells and str(int(code)) in cells for cells in rows):
            missing.append(f"CloseCode.{code.name} = {int(code)}: no table row with both")
    assert not missing, report("close codes", missing)


def limit_constants() -> dict[str, int | str]:
    """Upper-case module constants of protocol.py: the size limits and the id pattern."""
    found: dict[str, int | str] = {}
    for name, value in vars(protocol).items():
        if not name.isupper() or isinstance(value, (bool, Enum, dict)):
            continue
        if isinstance(value, int) or (isinstance(value, str) and name.endswith("PATTERN")):
            found[name] = value
    return found


def test_limit_constants_with_their_values() -> None:
    constants = limit_constants()
    assert {"MAX_TOPIC_CHARS", "MAX_CARD_BYTES", "MAX_SKD_BYTES", "PROOF_BYTES"} <= set(constants)
    lines = DOC.read_text(encoding="utf-8").splitlines()
    missing = []
    for name, value in sorted(constants.items()):
        if isinstance(value, str):
            found = any(f"`{name}`" in line and value in line for line in lines)
        else:
            number = re.compile(rf"(?<![\d.]){value}(?![\d.])")
            found = any(f"`{name}`" in line and number.search(line) for line in lines)
        if not found:
            missing.append(f"{name} = {value!r}: no line names it with its value")
    assert not missing, report("limit constants", missing)


def test_parser_sees_the_structure() -> None:
    """Guard the guard: headings inside fenced code are not sections, tables split on `|`."""
    tree = parse(
        "## A\n```\n## not a heading\n```\n### `x`\n| Field | T |\n|---|---|\n| `f` | a \\| b |\n"
    )
    a = tree.child("A")
    assert [c.title for c in a.children] == ["`x`"]
    assert first_column(a.children[0]) == {"f": ["`f`", "a \\| b"]}


def push_table(section: Section) -> set[str]:
    """The field names of a push section's first table (header starting with "Field")."""
    names: set[str] = set()
    started = False
    for cells in table_rows(section.text):
        if cells[0] == "Field":
            if started:
                break
            started = True
            continue
        if started:
            names.update(TICKED.findall(cells[0]))
    return names


def test_every_push_documents_exactly_its_fields(doc: Section) -> None:
    """Each push's Struct (chatserver/protocol/pushes.py) and its field table agree both ways;
    ordered pushes also carry the `seq` the bus adds."""
    pushes = doc.child(SERVER_PUSHES)
    wrong = []
    for push, struct in PUSHES.items():
        section = section_for(pushes, push.value)
        if section is None:
            continue  # reported by test_every_push_has_a_section
        fields = {f.encode_name for f in msgspec.structs.fields(struct)}
        if struct.ORDERED:
            fields.add("seq")
        documented = push_table(section)
        for name in sorted(fields - documented):
            wrong.append(f"push {push.value!r}: field {name!r} missing from its field table")
        for name in sorted(documented - fields):
            wrong.append(f"push {push.value!r}: documents field {name!r} the push lacks")
    assert not wrong, report("server push fields", wrong)


def test_each_code_is_in_one_table_only(doc: Section) -> None:
    """One catalogue: a code is the gateway's or the core's, never both (CATALOGUE asserts the
    same of the code)."""
    catalogue = doc.child(CATALOGUE)
    gateway = set(first_column(catalogue.child(GATEWAY_TABLE)))
    refusals = set(first_column(catalogue.child(REFUSAL_TABLE)))
    assert not gateway & refusals, f"in both tables: {sorted(gateway & refusals)}"
    assert not {str(c) for c in ErrorCode} & {str(c) for c in RefusalCode}
