"""Every resource declaration in infra/ against Microsoft's published Bicep type definitions,
the data `bicep build` type-checks with (shared/reference/bicep-types: Azure/bicep-types-az
and microsoftgraph/msgraph-bicep-types, unmodified; its README describes the format).

What is checked, for each `resource` declaration (nested child resources included, their
type and API version completed from the parent as Bicep does):

- the type and API version exist;
- the template's scope is one the type can be deployed at (Azure types; `scope:` aside);
- every property name is known at its level, recursively into objects and array items,
  unless the object takes any key (``additionalProperties``, e.g. `tags`);
- no read-only property is set (`id`, `defaultHostName`, ...);
- required properties are present (for an `existing` declaration, which only looks up,
  what identifies it: an ARM `name`, a Graph identifier such as `uniqueName` or `appId`);
- literal values fit: a closed set of string literals (a union with no plain string) is
  respected, a string is not given for a boolean, an integer is in range, and so on.

A type the shared reference lacks may come from ``tests/infra/reference-extra/``: Microsoft's
generated ``types.md`` for it (Azure/bicep-types-az, copied unmodified, its commit in
reference-extra/README.md), read into the same structure (``markdown_types``).

Expressions (parameters, variables, function calls, references) are not values: they are
not checked, except that both branches of a conditional (``c ? {...} : {...}``) are, names
and literals alike. Bicep's own keywords in a declaration (``parent``, ``scope``,
``dependsOn``) are not properties and are left out. Modules are not resources.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests.infra.bicep import Arr, Declaration, Expr, Lit, Obj, Template, Value, block_end, parse_value

REFERENCE = Path("/work/shared/reference/bicep-types")
EXTRA = Path(__file__).with_name("reference-extra")
KEYWORDS = {"parent", "scope", "dependsOn"}
REQUIRED, READ_ONLY, IDENTIFIER = 1, 2, 16
# ResourceType scope bits (bicep-types README): where a template deploys.
SCOPES = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8}


@dataclass
class TypeFile:
    path: Path
    types: list[dict[str, Any]]

    def deref(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.types[int(ref["$ref"].rsplit("/", 1)[1])]


@cache
def _file(path: Path) -> TypeFile:
    return TypeFile(path, json.loads(path.read_text(encoding="utf-8")))


@cache
def _index(reference: Path) -> dict[str, str]:
    resources = json.loads((reference / "index.json").read_text(encoding="utf-8"))["resources"]
    return {name.lower(): entry["$ref"] for name, entry in resources.items()}


def resource_type(name: str, reference: Path = REFERENCE) -> tuple[TypeFile, dict[str, Any]] | None:
    """The ResourceType entry for 'Type@apiVersion' (case-insensitive, as Bicep compares)."""
    ref = _index(reference).get(name.lower())
    if ref is None:
        return _extra().get(name.lower())
    path, index = ref.split("#/")
    file = _file(reference / path)
    return file, file.types[int(index)]


def versions_of(type_name: str, reference: Path = REFERENCE) -> list[str]:
    prefix = type_name.lower() + "@"
    names = [*_index(reference), *_extra()]
    return sorted(name.split("@", 1)[1] for name in names if name.startswith(prefix))


# ---------------------------------------------------------------- types.md, read as types.json

_PROPERTY = re.compile(r"^\* \*\*(?P<name>[^*]+)\*\*: (?P<type>.+?)(?: \((?P<flags>[A-Za-z, ]+)\))?: ")
_LINK = re.compile(r"^\[(?P<name>[^\]]+)\]\(#[^)]+\)(?P<array>\[\])?$")
_FLAG_BITS = {"Required": REQUIRED, "ReadOnly": READ_ONLY, "WriteOnly": 4, "DeployTimeConstant": 8, "Identifier": IDENTIFIER}


@cache
def _extra() -> dict[str, tuple[TypeFile, dict[str, Any]]]:
    found: dict[str, tuple[TypeFile, dict[str, Any]]] = {}
    for path in sorted(EXTRA.rglob("types.md")):
        file = markdown_types(path)
        for entry in file.types:
            if entry["$type"] == "ResourceType":
                found[entry["name"].lower()] = (file, entry)
    return found


def markdown_types(path: Path) -> TypeFile:
    """bicep-types-az's generated types.md (one API version of one provider) as the
    types.json structure: ResourceType, ObjectType (properties with flags,
    additionalProperties), ArrayType, UnionType of StringLiteralType and StringType,
    StringType, IntegerType, BooleanType."""
    types: list[dict[str, Any]] = []
    named: dict[str, int] = {}
    sections: list[tuple[str, list[str], str | None]] = []  # (title, property lines, additional type)
    title, lines, additional = "", [], None
    scopes: dict[str, int] = {}  # resource title -> scope bits ("Valid Scope(s)")
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("* **Valid Scope(s)**: "):
            names = line.split(": ", 1)[1].split(",")
            scopes[title] = sum(SCOPES[n.strip()[0].lower() + n.strip()[1:]] for n in names)
            continue
        if line.startswith("## "):
            if title:
                sections.append((title, lines, additional))
            title, lines, additional = line[3:].strip(), [], None
        elif line.startswith("* **Additional Properties Type**: "):
            additional = line.split(": ", 1)[1].strip()
        elif line.startswith("* **") and not line.startswith("* **Valid Scope"):
            lines.append(line)
    if title:
        sections.append((title, lines, additional))

    def add(entry: dict[str, Any]) -> dict[str, str]:
        types.append(entry)
        return {"$ref": f"#/{len(types) - 1}"}

    for title, _, _ in sections:  # objects first, so links resolve
        name = title.removeprefix("Resource ").split("@", 1)[0] if title.startswith("Resource ") else title
        named[title] = len(types)
        types.append({"$type": "ObjectType", "name": name, "properties": {}})

    def type_of(text: str) -> dict[str, str]:
        text = text.strip()
        link = _LINK.match(text)
        if link:
            ref = {"$ref": f"#/{named[link.group('name')]}"}
            return add({"$type": "ArrayType", "itemType": ref}) if link.group("array") else ref
        if text.endswith("[]"):
            return add({"$type": "ArrayType", "itemType": type_of(text[:-2])})
        if "|" in text or text.startswith("'"):
            elements = []
            for part in (p.strip() for p in text.split("|")):
                elements.append(add({"$type": "StringLiteralType", "value": part.strip("'")}) if part.startswith("'") else type_of(part))
            return elements[0] if len(elements) == 1 else add({"$type": "UnionType", "elements": elements})
        return add({"$type": {"string": "StringType", "int": "IntegerType", "bool": "BooleanType"}.get(text, "AnyType")})

    for title, lines, additional in sections:
        properties = {}
        for line in lines:
            match = _PROPERTY.match(line)
            assert match, f"{path}: cannot read {line!r}"
            flags = sum(_FLAG_BITS.get(flag.strip(), 0) for flag in (match.group("flags") or "").split(","))
            properties[match.group("name")] = {"type": type_of(match.group("type")), "flags": flags}
        body = types[named[title]]
        body["properties"] = properties
        if additional:
            body["additionalProperties"] = type_of(additional)
        if title.startswith("Resource "):
            add(
                {
                    "$type": "ResourceType",
                    "name": title.removeprefix("Resource "),
                    "body": {"$ref": f"#/{named[title]}"},
                    "readableScopes": scopes[title],
                    "writableScopes": scopes[title],
                }
            )
    return TypeFile(path, types)


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checked_names: int = 0  # property names looked up in a type, for the test's floor
    declarations: list[str] = field(default_factory=list)  # 'template symbol Type@version'


def check_template(template: Template, report: Report | None = None, reference: Path = REFERENCE) -> Report:
    report = report or Report()
    declarations = [d for d in template.declarations() if d.kind == "resource"]
    scope_name = re.search(r"(?m)^targetScope\s*=\s*'(\w+)'", template.text)
    scope_label = scope_name.group(1) if scope_name else "resourceGroup"
    scope = SCOPES.get(scope_label, SCOPES["resourceGroup"])
    for declaration in declarations:
        full = _full_type(declaration, declarations)
        where = f"{template.name} {declaration.symbol} ({full})"
        report.declarations.append(where)
        found = resource_type(full, reference)
        if found is None:
            type_name = full.split("@", 1)[0]
            known = versions_of(type_name, reference)
            report.problems.append(
                f"{where}: no such API version (the reference has {', '.join(known)})" if known else f"{where}: no such resource type in the reference"
            )
            continue
        file, resource = found
        body_text = template.text[declaration.body_start : block_end(template.code, declaration.body_start)]
        body = parse_value(body_text)
        assert isinstance(body, Obj)
        if "writableScopes" in resource and "scope" not in declaration.body:
            allowed = resource["readableScopes"] if declaration.existing else resource["writableScopes"]
            if not allowed & scope:
                report.problems.append(f"{where}: cannot be deployed at the template's scope ({scope_label})")
        if resource.get("flags", 0) & 1 and not declaration.existing:  # Graph: a read-only resource type
            report.problems.append(f"{where}: this type can only be read (declare it `existing`)")
        entries = {key: value for key, value in body.entries.items() if key not in KEYWORDS}
        _check(file, file.deref(resource["body"]), Obj(entries, body.computed), where, report, existing=declaration.existing)
    return report


def _full_type(declaration: Declaration, declarations: list[Declaration]) -> str:
    """'Type@version' of a declaration; a nested child's relative type is completed from its
    parent's (Bicep: "If the nested resource omits the API version, the API version of the
    parent resource is used")."""
    parents = [d for d in declarations if d.start < declaration.start and declaration.end <= d.end and d is not declaration]
    if not parents:
        return declaration.target
    parent = max(parents, key=lambda d: d.start)
    parent_type, parent_version = _full_type(parent, declarations).split("@", 1)
    segment, _, version = declaration.target.partition("@")
    return f"{parent_type}/{segment}@{version or parent_version}"


def _kind(value: Value) -> str:
    if isinstance(value, Obj):
        return "an object"
    if isinstance(value, Arr):
        return "an array"
    if isinstance(value, Lit):
        return "null" if value.value is None else {bool: "a boolean", int: "an integer", str: "a string"}[type(value.value)]
    return "an expression"


def _check(file: TypeFile, type_: dict[str, Any], value: Value, where: str, report: Report, existing: bool = False) -> None:
    """Problems of ``value`` against ``type_``, appended to the report."""
    problems = _problems(file, type_, value, where, report, existing)
    report.problems.extend(problems)


def _problems(file: TypeFile, type_: dict[str, Any], value: Value, where: str, report: Report, existing: bool = False) -> list[str]:
    if isinstance(value, Expr):
        # Computed: only a conditional's literal branches can be checked.
        return [problem for branch in value.branches for problem in _problems(file, type_, branch, where, report, existing)]
    kind = type_["$type"]
    if kind == "AnyType":
        return []
    if kind == "UnionType":
        return _union(file, type_, value, where, report, existing)
    if kind == "ObjectType":
        if not isinstance(value, Obj):
            return [f"{where}: {_kind(value)} where an object ({type_.get('name')}) is expected"]
        return _object(file, type_["properties"], type_.get("additionalProperties"), value, where, report, existing)
    if kind == "DiscriminatedObjectType":
        if not isinstance(value, Obj):
            return [f"{where}: {_kind(value)} where an object is expected"]
        return _discriminated(file, type_, value, where, report, existing)
    if kind == "ArrayType":
        if not isinstance(value, Arr):
            return [f"{where}: {_kind(value)} where an array is expected"]
        problems = []
        if not value.loop:
            if "minLength" in type_ and len(value.items) < type_["minLength"]:
                problems.append(f"{where}: at least {type_['minLength']} items, not {len(value.items)}")
            if "maxLength" in type_ and len(value.items) > type_["maxLength"]:
                problems.append(f"{where}: at most {type_['maxLength']} items, not {len(value.items)}")
        item_type = file.deref(type_["itemType"])
        for index, item in enumerate(value.items):
            problems += _problems(file, item_type, item, f"{where}[{'*' if value.loop else index}]", report, existing)
        return problems
    # Scalars: only literals can be checked.
    if not isinstance(value, Lit) or value.value is None:
        return [] if isinstance(value, Lit) else [f"{where}: {_kind(value)} where {kind} is expected"]
    literal = value.value
    if kind == "StringLiteralType":
        return [] if literal == type_["value"] else [f"{where}: {literal!r} where only {type_['value']!r} is allowed"]
    if kind == "StringType":
        if not isinstance(literal, str):
            return [f"{where}: {_kind(value)} where a string is expected"]
        problems = []
        if "minLength" in type_ and len(literal) < type_["minLength"]:
            problems.append(f"{where}: {literal!r} is shorter than {type_['minLength']}")
        if "maxLength" in type_ and len(literal) > type_["maxLength"]:
            problems.append(f"{where}: {literal!r} is longer than {type_['maxLength']}")
        if "pattern" in type_:
            try:
                if not re.search(type_["pattern"], literal):
                    problems.append(f"{where}: {literal!r} does not match {type_['pattern']}")
            except re.error:
                pass  # a .NET pattern Python cannot read: not checked
        return problems
    if kind == "IntegerType":
        if isinstance(literal, bool) or not isinstance(literal, int):
            return [f"{where}: {_kind(value)} where an integer is expected"]
        if "minValue" in type_ and literal < type_["minValue"]:
            return [f"{where}: {literal} is below the minimum {type_['minValue']}"]
        if "maxValue" in type_ and literal > type_["maxValue"]:
            return [f"{where}: {literal} is above the maximum {type_['maxValue']}"]
        return []
    if kind == "BooleanType":
        return [] if isinstance(literal, bool) else [f"{where}: {_kind(value)} where a boolean is expected"]
    if kind == "NullType":
        return [f"{where}: {_kind(value)} where null is expected"]
    return []


def _union(file: TypeFile, type_: dict[str, Any], value: Value, where: str, report: Report, existing: bool) -> list[str]:
    elements = [file.deref(element) for element in type_["elements"]]
    literals = [element["value"] for element in elements if element["$type"] == "StringLiteralType"]
    if isinstance(value, Lit) and isinstance(value.value, str) and literals and all(e["$type"] == "StringLiteralType" for e in elements):
        # A closed set: exactly these strings.
        return [] if value.value in literals else [f"{where}: {value.value!r} is not one of {literals}"]
    attempts = []
    for element in elements:
        scratch = Report()
        problems = _problems(file, element, value, where, scratch, existing)
        if not problems:
            report.checked_names += scratch.checked_names
            return []
        attempts.append(problems)
    return min(attempts, key=len) if attempts else []


def _object(file: TypeFile, properties: dict[str, Any], additional: dict[str, str] | None, value: Obj, where: str, report: Report, existing: bool) -> list[str]:
    problems = []
    for key, item in value.entries.items():
        report.checked_names += 1
        spec = properties.get(key)
        if spec is None:
            if additional is None:
                problems.append(f"{where}: unknown property {key!r} (known: {', '.join(sorted(properties))})")
            else:
                problems += _problems(file, file.deref(additional), item, f"{where}.{key}", report, existing)
            continue
        if spec["flags"] & READ_ONLY and not existing:
            problems.append(f"{where}: {key!r} is read-only")
            continue
        problems += _problems(file, file.deref(spec["type"]), item, f"{where}.{key}", report, existing)
    for key in value.computed:
        report.checked_names += 1
        if additional is None:
            problems.append(f"{where}: a computed key {key!r} where only known properties are allowed")
    if existing:
        # Looking up needs only what identifies the resource: an ARM name, a Graph identifier.
        required = [key for key, spec in properties.items() if spec["flags"] & IDENTIFIER or (key == "name" and spec["flags"] & REQUIRED)]
    else:
        required = [key for key, spec in properties.items() if spec["flags"] & REQUIRED and not spec["flags"] & READ_ONLY]
    problems += [f"{where}: required property {key!r} is missing" for key in required if key not in value.entries]
    return problems


def _discriminated(file: TypeFile, type_: dict[str, Any], value: Obj, where: str, report: Report, existing: bool) -> list[str]:
    discriminator = type_["discriminator"]
    chosen = value.entries.get(discriminator)
    elements = {name: file.deref(ref) for name, ref in type_["elements"].items()}
    if chosen is None:
        return [f"{where}: required property {discriminator!r} is missing (one of {sorted(elements)})"]
    if isinstance(chosen, Lit):
        element = elements.get(chosen.value) if isinstance(chosen.value, str) else None
        if element is None:
            return [f"{where}: {discriminator} {chosen.value!r} is not one of {sorted(elements)}"]
        properties = {**type_["baseProperties"], **element["properties"]}
        return _object(file, properties, element.get("additionalProperties"), value, where, report, existing)
    # Computed: every name must be known to some element.
    known = dict(type_["baseProperties"])
    for element in elements.values():
        known.update(element["properties"])
    return [f"{where}: unknown property {key!r}" for key in value.entries if key not in known]
