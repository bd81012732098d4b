"""Writes protos/CONTRACT.md, the contract documentation, from the protos and the hub's texts.

    python scripts/gen_contract_docs.py           write protos/CONTRACT.md
    python scripts/gen_contract_docs.py --check   exit 1 when protos/CONTRACT.md differs from a fresh one

Sources, so that the document cannot drift from what it documents:
- every .proto under protos/onecard/, with its comments: protoc (grpc_tools) writes a descriptor set
  with `--include_source_info`, and the comments come from `FileDescriptorProto.source_code_info`;
- `protos/contract_notes.toml`: what a proto comment cannot say — who calls each RPC, its idempotency,
  the errors it returns (status code + ErrorInfo reason), and the prose on conventions. Every RPC
  needs an entry, and every reason named there must exist in errors.proto with the same status code;
- the Chinese screen texts of the decline reasons: `onecard_hub.domain.decisions.DISPLAY_TEXT`.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_tools import protoc  # type: ignore[import-untyped]  # no py.typed

from onecard_hub.domain.decisions import DISPLAY_TEXT, DeclineReason

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
NOTES_FILE = PROTO_ROOT / "contract_notes.toml"
OUTPUT = PROTO_ROOT / "CONTRACT.md"
ERRORS_PROTO = "onecard/common/v1/errors.proto"
DECLINE_REASON = ".onecard.auth.v1.DeclineReason"
GRPC_CODES = frozenset(code.name for code in grpc.StatusCode)

# Paths inside source_code_info (field numbers of descriptor.proto).
SYNTAX, MESSAGE, ENUM, SERVICE = 12, 4, 5, 6
FIELD, NESTED, VALUE, METHOD = 2, 3, 2, 2
F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in F.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


class ContractError(Exception):
    """The protos and the notes do not fit together; the message says how."""


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "onecard").rglob("*.proto"))


def load_descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
    include = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="onecard-contract-") as tmp:
        out = Path(tmp) / "contract.pb"
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", "--include_source_info"]
        if protoc.main([*args, f"--descriptor_set_out={out}", *proto_files()]) != 0:
            raise ContractError("protoc failed on the protos (see its message above)")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return sorted(files, key=lambda f: f.name)


def paragraphs(text: str) -> str:
    """A proto comment as Markdown: lines of a paragraph joined, paragraphs kept apart."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in block.splitlines()) for block in blocks)


def cell(text: str) -> str:
    return paragraphs(text).replace("\n\n", "<br>").replace("|", "\\|")


@dataclass
class Comments:
    by_path: dict[tuple[int, ...], str]

    @classmethod
    def of(cls, file: descriptor_pb2.FileDescriptorProto) -> Comments:
        found = {}
        for loc in file.source_code_info.location:
            text = "\n".join(t for t in (loc.leading_comments, loc.trailing_comments) if t.strip())
            if text.strip():
                found[tuple(loc.path)] = text
        # The file's opening comment sits before `syntax`.
        for loc in file.source_code_info.location:
            if tuple(loc.path) == (SYNTAX,) and loc.leading_detached_comments:
                found.setdefault((SYNTAX,), loc.leading_detached_comments[-1])
        return cls(found)

    def get(self, *path: int) -> str:
        return paragraphs(self.by_path.get(path, ""))


def anchor(full_name: str) -> str:
    return full_name.replace(".", "-").lower()


def link(full_name: str) -> str:
    return f"[`{full_name.rsplit('.', 1)[-1]}`](#{anchor(full_name)})"


class Contract:
    """The protos as one searchable whole, plus the notes and the hub's texts."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto], notes: dict[str, Any]) -> None:
        self.files = files
        self.notes = notes
        self.comments = {f.name: Comments.of(f) for f in files}
        self.messages: dict[str, tuple[descriptor_pb2.DescriptorProto, Comments, tuple[int, ...]]] = {}
        self.enums: dict[str, tuple[descriptor_pb2.EnumDescriptorProto, Comments, tuple[int, ...]]] = {}
        for f in files:
            for i, m in enumerate(f.message_type):
                self._add_message(f".{f.package}.{m.name}", m, self.comments[f.name], (MESSAGE, i))
            for i, e in enumerate(f.enum_type):
                self.enums[f".{f.package}.{e.name}"] = (e, self.comments[f.name], (ENUM, i))
        self.error_reasons = self._error_reasons()
        self._validate_notes()
        self.descriptions: dict[str, str] = notes.get("descriptions", {})
        self.unused_descriptions = set(self.descriptions)

    def describe(self, full_name: str, comment: str) -> str:
        """The proto comment, or else the first `descriptions` entry whose pattern matches the name."""
        if comment:
            return comment
        for pattern, text in self.descriptions.items():
            if fnmatch.fnmatchcase(full_name, pattern):
                self.unused_descriptions.discard(pattern)
                return paragraphs(text)
        return ""

    def _add_message(
        self, name: str, m: descriptor_pb2.DescriptorProto, c: Comments, path: tuple[int, ...]
    ) -> None:
        self.messages[name] = (m, c, path)
        for i, nested in enumerate(m.nested_type):
            self._add_message(f"{name}.{nested.name}", nested, c, (*path, NESTED, i))
        for i, e in enumerate(m.enum_type):
            self.enums[f"{name}.{e.name}"] = (e, c, (*path, 4, i))

    def methods(self) -> Iterator[tuple[str, descriptor_pb2.MethodDescriptorProto]]:
        for f in self.files:
            for s in f.service:
                for m in s.method:
                    yield f"{f.package}.{s.name}.{m.name}", m

    def _error_reasons(self) -> dict[str, tuple[str, str]]:
        """ErrorReason name (no prefix) -> (status code, meaning), from errors.proto's comments."""
        enum, comments, path = self.enums[".onecard.common.v1.ErrorReason"]
        reasons = {}
        for i, v in enumerate(enum.value):
            if v.number == 0:
                continue
            text = comments.get(*path, VALUE, i)
            code, _, meaning = text.partition(":")
            if code not in GRPC_CODES:
                raise ContractError(f"{ERRORS_PROTO}: {v.name}: comment must start with its status code")
            meaning = meaning.strip()
            reasons[v.name.removeprefix("ERROR_REASON_")] = (code, meaning[:1].upper() + meaning[1:])
        return reasons

    def _validate_notes(self) -> None:
        rpcs = {name for name, _ in self.methods()}
        services = {name.rsplit(".", 1)[0] for name in rpcs}
        noted_rpcs, noted_services = set(self.notes.get("rpcs", {})), set(self.notes.get("services", {}))
        problems = [f'no notes for RPC {n}: add [rpcs."{n}"]' for n in sorted(rpcs - noted_rpcs)]
        problems += [f"notes for unknown RPC {n}" for n in sorted(noted_rpcs - rpcs)]
        problems += [f"no notes for service {n}" for n in sorted(services - noted_services)]
        problems += [f"notes for unknown service {n}" for n in sorted(noted_services - services)]
        for where, entry in [*self.notes["services"].items(), *self.notes["rpcs"].items()]:
            for error in entry.get("errors", []):
                code, reason = error["code"], error.get("reason", "")
                if code not in GRPC_CODES:
                    problems.append(f"{where}: unknown status code {code}")
                elif reason and reason not in self.error_reasons:
                    problems.append(f"{where}: {reason} is not an ErrorReason of {ERRORS_PROTO}")
                elif reason and self.error_reasons[reason][0] != code:
                    problems.append(
                        f"{where}: {reason} comes with {self.error_reasons[reason][0]}, not {code}"
                    )
        if problems:
            raise ContractError(f"{NOTES_FILE.name} does not fit the protos:\n  " + "\n  ".join(problems))

    def field_type(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type in SCALARS:
            base = f"`{SCALARS[field.type]}`"
        elif field.type_name.startswith(".google.protobuf."):
            base = f"`{field.type_name[1:]}`"
        else:
            entry = self.messages.get(field.type_name)
            if entry is not None and entry[0].options.map_entry:
                key, value = entry[0].field
                return f"map<{self.field_type(key)}, {self.field_type(value)}>"
            base = link(field.type_name[1:])
        return f"repeated {base}" if field.label == F.LABEL_REPEATED else base


def render_fields(contract: Contract, name: str) -> list[str]:
    message, comments, path = contract.messages[name]
    if not message.field:
        return ["No fields.", ""]
    lines = ["| field | # | type | meaning |", "|---|---|---|---|"]
    for i, field in enumerate(message.field):
        meaning = contract.describe(f"{name[1:]}.{field.name}", comments.get(*path, FIELD, i))
        kind = contract.field_type(field)
        if field.proto3_optional:
            kind = f"optional {kind}"
        elif field.HasField("oneof_index"):
            meaning = f"One of `{message.oneof_decl[field.oneof_index].name}`. {meaning}".strip()
        lines.append(f"| `{field.name}` | {field.number} | {kind} | {cell(meaning) or '—'} |")
    return [*lines, ""]


def render_errors(errors: list[dict[str, str]]) -> list[str]:
    lines = ["| status code | ErrorInfo reason | when |", "|---|---|---|"]
    for e in errors:
        reason = f"`{e['reason']}`" if e.get("reason") else "—"
        lines.append(f"| `{e['code']}` | {reason} | {cell(e['when'])} |")
    return [*lines, ""]


def render_enum(contract: Contract, name: str, screen_text: dict[int, str] | None = None) -> list[str]:
    enum, comments, path = contract.enums[name]
    head = "| value | # | meaning |" + (" terminal screen text |" if screen_text else "")
    lines = [head, "|---|---|---|" + ("---|" if screen_text else "")]
    for i, v in enumerate(enum.value):
        meaning = contract.describe(f"{name[1:]}.{v.name}", comments.get(*path, VALUE, i))
        row = f"| `{v.name}` | {v.number} | {cell(meaning) or '—'} |"
        if screen_text is not None:
            row += f" {screen_text.get(v.number, '—')} |"
        lines.append(row)
    return [*lines, ""]


def decline_texts(contract: Contract, texts: dict[Any, str], hub_enum: Any) -> dict[int, str]:
    """Screen texts by DeclineReason number; the hub's enum must match the proto's names."""
    enum = contract.enums[DECLINE_REASON][0]
    found = {}
    for v in enum.value:
        if v.number == 0:
            continue
        short = v.name.removeprefix("DECLINE_REASON_")
        try:
            hub_reason = hub_enum(v.number)
        except ValueError:
            raise ContractError(f"the hub has no DeclineReason {v.number} ({short})") from None
        if hub_reason.name != short or hub_reason not in texts:
            raise ContractError(
                f"the hub's DeclineReason {v.number} is {hub_reason.name}, not {short}, or has no text"
            )
        found[v.number] = texts[hub_reason]
    return found


def render(contract: Contract, texts: dict[Any, str], hub_enum: Any) -> str:
    notes = contract.notes
    screen = decline_texts(contract, texts, hub_enum)
    out = [notes["title"], "", notes["generated"].strip(), "", notes["intro"].strip(), ""]
    out += ["## Contents", ""]
    for f in contract.files:
        for s in f.service:
            out.append(f"- {link(f'{f.package}.{s.name}')}: " + ", ".join(m.name for m in s.method))
    out += [
        "- [Errors](#errors)",
        "- [Decline reasons](#decline-reasons)",
        "- [Messages and enums](#messages-and-enums)",
        "",
    ]

    used: set[str] = set()
    out += ["## Services", ""]
    for f in contract.files:
        c = contract.comments[f.name]
        for si, s in enumerate(f.service):
            full = f"{f.package}.{s.name}"
            n = notes["services"][full]
            out += [f'<a id="{anchor(full)}"></a>', f"### {s.name}", "", f"`{full}` in `protos/{f.name}`", ""]
            out += [c.get(SERVICE, si) or c.get(SYNTAX), "", f"**Called by:** {paragraphs(n['callers'])}", ""]
            out += ["Errors every method of this service can return:", "", *render_errors(n["errors"])]
            for mi, m in enumerate(s.method):
                rn = notes["rpcs"][f"{full}.{m.name}"]
                request, response = m.input_type, m.output_type
                used.update((request, response))
                out += [f"#### {s.name}.{m.name}", ""]
                out += [
                    f"`rpc {m.name}({request.rsplit('.', 1)[-1]}) returns ({response.rsplit('.', 1)[-1]})`",
                    "",
                ]
                out += [c.get(SERVICE, si, METHOD, mi) or paragraphs(rn.get("summary", "")), ""]
                out += [
                    f"- **Called by:** {paragraphs(rn['callers'])}",
                    f"- **Idempotency:** {paragraphs(rn['idempotency'])}",
                    "",
                ]
                if rn.get("errors"):
                    out += [
                        "Errors of this method (besides the service's):",
                        "",
                        *render_errors(rn["errors"]),
                    ]
                out += [f"Request `{request[1:]}`:", "", *render_fields(contract, request)]
                out += [f"Response `{response[1:]}`:", "", *render_fields(contract, response)]

    out += ["## Errors", "", notes["errors"].strip(), ""]
    out += [
        "### ErrorReason",
        "",
        f"`onecard.common.v1.ErrorReason` in `protos/{ERRORS_PROTO}`; ErrorInfo.reason "
        "is the value name without `ERROR_REASON_`.",
        "",
    ]
    out += ["| ErrorInfo reason | status code | meaning |", "|---|---|---|"]
    out += [
        f"| `{r}` | `{code}` | {cell(meaning)} |" for r, (code, meaning) in contract.error_reasons.items()
    ]
    out += [
        "",
        f'<a id="{anchor(DECLINE_REASON[1:])}"></a>',
        "## Decline reasons",
        "",
        notes["declines"].strip(),
        "",
    ]
    out += [f"An approval shows {texts[hub_enum(0)]}.", ""]
    out += render_enum(contract, DECLINE_REASON, screen)

    out += ["## Messages and enums", ""]
    for f in contract.files:
        names = [n for n in contract.messages if n.startswith(f".{f.package}.") and n not in used]
        enums = [n for n in contract.enums if n.startswith(f".{f.package}.") and n != DECLINE_REASON]
        if not names and not enums:
            continue
        out += [f"### {f.package}", ""]
        for name in names:
            if contract.messages[name][0].options.map_entry:
                continue
            _, c, path = contract.messages[name]
            out += [f'<a id="{anchor(name[1:])}"></a>', f"#### {name[1:]}", ""]
            out += [contract.describe(name[1:], c.get(*path)), "", *render_fields(contract, name)]
        for name in enums:
            _, c, path = contract.enums[name]
            out += [f'<a id="{anchor(name[1:])}"></a>', f"#### {name[1:]}", ""]
            out += [contract.describe(name[1:], c.get(*path)), ""]
            out += render_enum(contract, name)
    if contract.unused_descriptions:
        stale = ", ".join(sorted(contract.unused_descriptions))
        raise ContractError(f"descriptions that match nothing (or only commented elements): {stale}")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"


def generate() -> str:
    notes = tomllib.loads(NOTES_FILE.read_text(encoding="utf-8"))
    return render(Contract(load_descriptors(), notes), dict(DISPLAY_TEXT), DeclineReason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare protos/CONTRACT.md with a fresh one")
    args = parser.parse_args(argv)
    try:
        text = generate()
    except ContractError as exc:
        print(f"gen_contract_docs: {exc}", file=sys.stderr)
        return 1
    rel = OUTPUT.relative_to(REPO_ROOT)
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"gen_contract_docs: {rel} is out of date; run `make contract-docs`", file=sys.stderr)
            return 1
        print(f"gen_contract_docs: {rel} up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"gen_contract_docs: wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
