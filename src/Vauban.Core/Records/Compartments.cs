// The patient a resource concerns (its Patient compartment), read from the references the index
// extracts: a Patient is its own compartment; other types name the patient in subject, patient,
// beneficiary or an appointment's participant. Stored in clear on the resource row for the policy.
using System.Text.Json;
using Vauban.Fhir;
using Vauban.Records.Search;

namespace Vauban.Records;

internal static class Compartments
{
    // The stored reference parameters that name the patient (see SearchParameters; the codes never change).
    private static readonly HashSet<int> PatientParams = [501, 601, 702, 801, 901, 1001, 1101, 1201, 1301];

    public static string? Of(string type, string id, IndexEntries index)
    {
        if (type == KnownResourceTypes.Patient) return id;
        foreach (var reference in index.References)
        {
            if (PatientParams.Contains(reference.Param) && reference.Target.StartsWith("Patient/", StringComparison.Ordinal)) return reference.Target[8..];
        }
        return null;
    }

    /// <summary>
    /// Why the resource cannot be stored when it names its patient in a form the index does not follow: an absolute URL, a
    /// contained Patient, a urn: or conditional reference, an identifier or display alone. Its compartment would be none, and a
    /// record in no patient's record is open to everyone who may read its type (people of the role, clients limited to some
    /// patients), counted by the guard for no patient, absent from the patient's $everything and from a breach's scope.
    /// Null when every patient reference is a local "Patient/id" (or names something that is not a patient).
    /// </summary>
    public static Issue? UnfollowedPatientReference(string type, JsonElement resource)
    {
        if (type == KnownResourceTypes.Patient) return null;
        List<JsonElement>? values = null;
        foreach (var parameter in SearchParameters.Stored(type))
        {
            if (!PatientParams.Contains(parameter.Code)) continue;
            // An appointment's participants are people, rooms and devices as well as its patient, often named by display only;
            // the other elements are the record's patient itself, where a reference that says nothing of its type is refused.
            var isThePatient = parameter.Code != AppointmentActor;
            foreach (var path in parameter.Paths)
            {
                values ??= [];
                values.Clear();
                ElementPath.Select(resource, path, values);
                foreach (var value in values)
                {
                    if (!IsFollowed(value, resource, isThePatient))
                    {
                        var where = type + "." + path;
                        return Issue.Invalid($"{where} must name the patient as a reference 'Patient/<id>' to a patient of this server: an absolute URL, "
                            + $"a contained Patient, a urn: or conditional reference, or an identifier or display alone would leave this {type} in no patient's "
                            + $"record, open to everyone who may read {type}.", where);
                    }
                }
            }
        }
        return null;
    }

    private const int AppointmentActor = 702;
    private const int PatientLink = 116;

    private static bool IsFollowed(JsonElement reference, JsonElement resource, bool isThePatient)
    {
        if (reference.ValueKind != JsonValueKind.Object) return true;
        var declared = reference.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var declaresPatient = string.Equals(declared, KnownResourceTypes.Patient, StringComparison.OrdinalIgnoreCase)
            || (declared is not null && declared.EndsWith("/" + KnownResourceTypes.Patient, StringComparison.OrdinalIgnoreCase));
        if (!reference.TryGetProperty("reference", out var r) || r.ValueKind != JsonValueKind.String)
        {
            return !declaresPatient && !(isThePatient && declared is null);
        }
        var text = r.GetString()!;
        if (ReferenceTarget.TryParseLocal(text, out _, out var targetType)) return !declaresPatient || targetType == KnownResourceTypes.Patient;
        if (declaresPatient) return false;
        if (text.StartsWith('#')) return ContainedType(resource, text[1..]) != KnownResourceTypes.Patient;
        if (text.StartsWith("urn:", StringComparison.OrdinalIgnoreCase)) return false;
        // An absolute URL ("https://…/fhir/Patient/123"), a conditional reference ("Patient?identifier=…"), a local one written
        // askew ("Patient/123/", " Patient/123"): anything that names the Patient type.
        foreach (var segment in text.Split('?', 2)[0].Split('/'))
        {
            if (segment.Trim().Equals(KnownResourceTypes.Patient, StringComparison.OrdinalIgnoreCase)) return false;
        }
        return true;
    }

    private static string? ContainedType(JsonElement resource, string id)
    {
        if (!resource.TryGetProperty("contained", out var contained) || contained.ValueKind != JsonValueKind.Array) return null;
        foreach (var item in contained.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("id", out var itemId) && itemId.ValueKind == JsonValueKind.String && itemId.ValueEquals(id)
                && item.TryGetProperty("resourceType", out var itemType) && itemType.ValueKind == JsonValueKind.String)
            {
                return itemType.GetString();
            }
        }
        return null;
    }

    /// <summary>Why a record of a type that belongs in a patient's record (every type but Patient, Practitioner, PractitionerRole
    /// and Organization) cannot be stored when it names no patient at all: an Observation without subject, an Appointment none
    /// of whose participants is a patient (a practitioner and a name given as display alone). R4 lets such elements be absent;
    /// here the record would be in no patient's record, open to everyone who may read its type, as when it names one in a form
    /// the index does not follow. A subject that names a Device or a Location (an analyser's quality-control result, a room's
    /// temperature) stays allowed. Null when it names a patient (the reference's form is <see cref="UnfollowedPatientReference"/>'s
    /// question).</summary>
    public static Issue? NamesNoPatient(string type, JsonElement resource, IndexEntries index)
    {
        var element = PatientElement(type);
        if (type == KnownResourceTypes.Patient || element == type || Of(type, "", index) is not null) return null;
        if (type != KnownResourceTypes.Appointment)
        {
            var values = new List<JsonElement>();
            foreach (var parameter in SearchParameters.Stored(type))
            {
                if (!PatientParams.Contains(parameter.Code)) continue;
                foreach (var path in parameter.Paths) ElementPath.Select(resource, path, values);
            }
            if (values.Exists(NamesDeviceOrLocation)) return null;
        }
        var article = "AEIOU".Contains(type[0], StringComparison.Ordinal) ? "An" : "A";
        return Issue.Invalid($"{article} {type} must name its patient ({element}) as a reference 'Patient/<id>' to a patient of this server: without one it "
            + $"would be in no patient's record, open to everyone who may read {type}.", element);
    }

    /// <summary>Whether a reference names a Device or a Location (local, absolute, or by its <c>type</c>): what a record about no
    /// patient may be about. A typo ("Patients/1"), a type R4 does not have, a Group, a contained resource are not.</summary>
    private static bool NamesDeviceOrLocation(JsonElement reference)
    {
        if (reference.ValueKind != JsonValueKind.Object) return false;
        static bool IsOne(string? type) => type is "Device" or "Location";
        if (reference.TryGetProperty("reference", out var r) && r.ValueKind == JsonValueKind.String)
        {
            var segments = r.GetString()!.Split('?', 2)[0].Split('/');
            var named = segments.Length >= 4 && segments[^2] == "_history" ? segments[^4] : segments.Length >= 2 ? segments[^2] : null;
            return IsOne(named);
        }
        var declared = reference.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return IsOne(declared?[(declared.LastIndexOf('/') + 1)..]);
    }

    /// <summary>The element through which a resource of this type names its patient ("Observation.subject"), for a refusal.</summary>
    public static string PatientElement(string type)
    {
        foreach (var parameter in SearchParameters.Stored(type))
        {
            if (PatientParams.Contains(parameter.Code)) return type + "." + parameter.Paths[0];
        }
        return type;
    }

    /// <summary>Every patient the resource names where a patient's record is meant (an appointment may name several): a write
    /// puts the resource into each of their records, and a care relationship may be computed from each.</summary>
    public static IReadOnlyList<string> Named(string type, string id, IndexEntries index)
    {
        List<string>? named = type == KnownResourceTypes.Patient ? [id] : null;
        foreach (var reference in index.References)
        {
            // A patient's links to another patient record name that patient too: it must exist, and be open to the writer.
            var names = type == KnownResourceTypes.Patient ? reference.Param == PatientLink : PatientParams.Contains(reference.Param);
            if (names && reference.Target.StartsWith("Patient/", StringComparison.Ordinal))
            {
                var patient = reference.Target[8..];
                named ??= [];
                if (!named.Contains(patient, StringComparer.Ordinal)) named.Add(patient);
            }
        }
        return named ?? [];
    }
}
