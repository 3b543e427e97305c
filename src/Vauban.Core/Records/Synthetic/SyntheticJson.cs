using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Vauban.Records.Synthetic;

// Writing FHIR JSON fast: property names pre-encoded once, one reused buffer and writer per thread,
// dates formatted by hand. The relaxed encoder keeps "é" as UTF-8 instead of "\u00E9"; it still
// escapes quotes, backslashes and control characters, and this JSON is stored, never put in HTML.
internal static class SyntheticJson
{
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    private static readonly JsonWriterOptions Options = new() { Encoder = Encoder, SkipValidation = true };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Starts a resource on this thread's writer: '{"resourceType":…,"id":…'.</summary>
    public static Utf8JsonWriter Begin(JsonEncodedText resourceType, string id)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(8192);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, Options);
        writer.Reset(buffer);
        writer.WriteStartObject();
        writer.WriteString(Prop.ResourceType, resourceType);
        writer.WriteString(Prop.Id, id);
        return writer;
    }

    /// <summary>Closes the resource started by <see cref="Begin"/> and copies it out.</summary>
    public static SyntheticResource End(Utf8JsonWriter writer, string resourceType, string id)
    {
        writer.WriteEndObject();
        writer.Flush();
        return new SyntheticResource(resourceType, id, t_buffer!.WrittenSpan.ToArray());
    }

    public static void Reference(Utf8JsonWriter writer, JsonEncodedText property, string reference)
    {
        writer.WriteStartObject(property);
        writer.WriteString(Prop.Reference, reference);
        writer.WriteEndObject();
    }

    public static void Reference(Utf8JsonWriter writer, JsonEncodedText property, string reference, string display)
    {
        writer.WriteStartObject(property);
        writer.WriteString(Prop.Reference, reference);
        writer.WriteString(Prop.Display, display);
        writer.WriteEndObject();
    }

    /// <summary>A CodeableConcept with one coding (and the display as text).</summary>
    public static void Concept(Utf8JsonWriter writer, JsonEncodedText property, JsonEncodedText system, string code, string? display)
    {
        writer.WriteStartObject(property);
        ConceptBody(writer, system, code, display);
        writer.WriteEndObject();
    }

    /// <summary>A CodeableConcept as an array element.</summary>
    public static void ConceptItem(Utf8JsonWriter writer, JsonEncodedText system, string code, string? display)
    {
        writer.WriteStartObject();
        ConceptBody(writer, system, code, display);
        writer.WriteEndObject();
    }

    /// <summary>A one-element array of CodeableConcept, e.g. Observation.category.</summary>
    public static void ConceptArray(Utf8JsonWriter writer, JsonEncodedText property, JsonEncodedText system, string code, string? display)
    {
        writer.WriteStartArray(property);
        ConceptItem(writer, system, code, display);
        writer.WriteEndArray();
    }

    public static void Coding(Utf8JsonWriter writer, JsonEncodedText property, JsonEncodedText system, string code, string? display)
    {
        writer.WriteStartObject(property);
        writer.WriteString(Prop.System, system);
        writer.WriteString(Prop.Code, code);
        if (display is not null)
        {
            writer.WriteString(Prop.Display, display);
        }

        writer.WriteEndObject();
    }

    public static void Identifier(Utf8JsonWriter writer, JsonEncodedText? use, JsonEncodedText? typeCode, JsonEncodedText system, string value)
    {
        writer.WriteStartObject();
        if (use is { } u)
        {
            writer.WriteString(Prop.Use, u);
        }

        if (typeCode is { } t)
        {
            writer.WriteStartObject(Prop.Type);
            writer.WriteStartArray(Prop.Coding);
            writer.WriteStartObject();
            writer.WriteString(Prop.System, Sys.FrCoreIdentifierType);
            writer.WriteString(Prop.Code, t);
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteString(Prop.System, system);
        writer.WriteString(Prop.Value, value);
        writer.WriteEndObject();
    }

    public static void ContactPoint(Utf8JsonWriter writer, JsonEncodedText system, ReadOnlySpan<char> value, JsonEncodedText use)
    {
        writer.WriteStartObject();
        writer.WriteString(Prop.System, system);
        writer.WriteString(Prop.Value, value);
        writer.WriteString(Prop.Use, use);
        writer.WriteEndObject();
    }

    /// <summary>A FHIR date: yyyy-MM-dd.</summary>
    public static void Date(Utf8JsonWriter writer, JsonEncodedText property, DateOnly date)
    {
        Span<byte> text = stackalloc byte[10];
        WriteDate(text, date.Year, date.Month, date.Day);
        writer.WriteString(property, text);
    }

    /// <summary>A FHIR dateTime in French local time with its offset: yyyy-MM-ddTHH:mm:ss+01:00.</summary>
    public static void DateTime(Utf8JsonWriter writer, JsonEncodedText property, DateTime utc)
    {
        Span<byte> text = stackalloc byte[25];
        Format(text, utc);
        writer.WriteString(property, text);
    }

    public static void Period(Utf8JsonWriter writer, DateTime startUtc, DateTime endUtc)
    {
        writer.WriteStartObject(Prop.Period);
        DateTime(writer, Prop.Start, startUtc);
        DateTime(writer, Prop.End, endUtc);
        writer.WriteEndObject();
    }

    public static void Quantity(Utf8JsonWriter writer, JsonEncodedText property, double value, int decimals, string unit)
    {
        writer.WriteStartObject(property);
        writer.WriteNumber(Prop.Value, Math.Round(value, decimals));
        writer.WriteString(Prop.Unit, unit);
        writer.WriteString(Prop.System, Sys.Ucum);
        writer.WriteString(Prop.Code, unit);
        writer.WriteEndObject();
    }

    private static void ConceptBody(Utf8JsonWriter writer, JsonEncodedText system, string code, string? display)
    {
        writer.WriteStartArray(Prop.Coding);
        writer.WriteStartObject();
        writer.WriteString(Prop.System, system);
        writer.WriteString(Prop.Code, code);
        if (display is not null)
        {
            writer.WriteString(Prop.Display, display);
        }

        writer.WriteEndObject();
        writer.WriteEndArray();
        if (display is not null)
        {
            writer.WriteString(Prop.Text, display);
        }
    }

    private static void Format(Span<byte> text, DateTime utc)
    {
        // Paris's clocks at that instant, and its offset then (ParisTime: the one place Vauban takes Paris's rules from).
        var local = ParisTime.Of(new DateTimeOffset(utc.Ticks, TimeSpan.Zero));
        var offset = local.Offset.Hours;
        WriteDate(text, local.Year, local.Month, local.Day);
        text[10] = (byte)'T';
        Two(text[11..], local.Hour);
        text[13] = (byte)':';
        Two(text[14..], local.Minute);
        text[16] = (byte)':';
        Two(text[17..], local.Second);
        text[19] = (byte)'+';
        Two(text[20..], offset);
        text[22] = (byte)':';
        text[23] = (byte)'0';
        text[24] = (byte)'0';
    }

    private static void WriteDate(Span<byte> text, int year, int month, int day)
    {
        Two(text, year / 100);
        Two(text[2..], year % 100);
        text[4] = (byte)'-';
        Two(text[5..], month);
        text[7] = (byte)'-';
        Two(text[8..], day);
    }

    private static void Two(Span<byte> text, int value)
    {
        text[0] = (byte)('0' + (value / 10));
        text[1] = (byte)('0' + (value % 10));
    }
}

// Pre-encoded JSON property names: encoding them once saves most of the writer's per-property cost.
internal static class Prop
{
    public static readonly JsonEncodedText ResourceType = JsonEncodedText.Encode("resourceType");
    public static readonly JsonEncodedText Id = JsonEncodedText.Encode("id");
    public static readonly JsonEncodedText Reference = JsonEncodedText.Encode("reference");
    public static readonly JsonEncodedText Display = JsonEncodedText.Encode("display");
    public static readonly JsonEncodedText System = JsonEncodedText.Encode("system");
    public static readonly JsonEncodedText Code = JsonEncodedText.Encode("code");
    public static readonly JsonEncodedText Coding = JsonEncodedText.Encode("coding");
    public static readonly JsonEncodedText Text = JsonEncodedText.Encode("text");
    public static readonly JsonEncodedText Value = JsonEncodedText.Encode("value");
    public static readonly JsonEncodedText Use = JsonEncodedText.Encode("use");
    public static readonly JsonEncodedText Type = JsonEncodedText.Encode("type");
    public static readonly JsonEncodedText Identifier = JsonEncodedText.Encode("identifier");
    public static readonly JsonEncodedText Active = JsonEncodedText.Encode("active");
    public static readonly JsonEncodedText Name = JsonEncodedText.Encode("name");
    public static readonly JsonEncodedText Family = JsonEncodedText.Encode("family");
    public static readonly JsonEncodedText Given = JsonEncodedText.Encode("given");
    public static readonly JsonEncodedText Prefix = JsonEncodedText.Encode("prefix");
    public static readonly JsonEncodedText Telecom = JsonEncodedText.Encode("telecom");
    public static readonly JsonEncodedText Gender = JsonEncodedText.Encode("gender");
    public static readonly JsonEncodedText BirthDate = JsonEncodedText.Encode("birthDate");
    public static readonly JsonEncodedText Address = JsonEncodedText.Encode("address");
    public static readonly JsonEncodedText Line = JsonEncodedText.Encode("line");
    public static readonly JsonEncodedText City = JsonEncodedText.Encode("city");
    public static readonly JsonEncodedText PostalCode = JsonEncodedText.Encode("postalCode");
    public static readonly JsonEncodedText Country = JsonEncodedText.Encode("country");
    public static readonly JsonEncodedText Extension = JsonEncodedText.Encode("extension");
    public static readonly JsonEncodedText Url = JsonEncodedText.Encode("url");
    public static readonly JsonEncodedText ValueAddress = JsonEncodedText.Encode("valueAddress");
    public static readonly JsonEncodedText MaritalStatus = JsonEncodedText.Encode("maritalStatus");
    public static readonly JsonEncodedText Communication = JsonEncodedText.Encode("communication");
    public static readonly JsonEncodedText Language = JsonEncodedText.Encode("language");
    public static readonly JsonEncodedText Preferred = JsonEncodedText.Encode("preferred");
    public static readonly JsonEncodedText GeneralPractitioner = JsonEncodedText.Encode("generalPractitioner");
    public static readonly JsonEncodedText ManagingOrganization = JsonEncodedText.Encode("managingOrganization");
    public static readonly JsonEncodedText Practitioner = JsonEncodedText.Encode("practitioner");
    public static readonly JsonEncodedText Organization = JsonEncodedText.Encode("organization");
    public static readonly JsonEncodedText Specialty = JsonEncodedText.Encode("specialty");
    public static readonly JsonEncodedText Status = JsonEncodedText.Encode("status");
    public static readonly JsonEncodedText Beneficiary = JsonEncodedText.Encode("beneficiary");
    public static readonly JsonEncodedText SubscriberId = JsonEncodedText.Encode("subscriberId");
    public static readonly JsonEncodedText Relationship = JsonEncodedText.Encode("relationship");
    public static readonly JsonEncodedText Payor = JsonEncodedText.Encode("payor");
    public static readonly JsonEncodedText Period = JsonEncodedText.Encode("period");
    public static readonly JsonEncodedText Start = JsonEncodedText.Encode("start");
    public static readonly JsonEncodedText End = JsonEncodedText.Encode("end");
    public static readonly JsonEncodedText Class = JsonEncodedText.Encode("class");
    public static readonly JsonEncodedText Subject = JsonEncodedText.Encode("subject");
    public static readonly JsonEncodedText Participant = JsonEncodedText.Encode("participant");
    public static readonly JsonEncodedText Individual = JsonEncodedText.Encode("individual");
    public static readonly JsonEncodedText ServiceProvider = JsonEncodedText.Encode("serviceProvider");
    public static readonly JsonEncodedText ReasonCode = JsonEncodedText.Encode("reasonCode");
    public static readonly JsonEncodedText Actor = JsonEncodedText.Encode("actor");
    public static readonly JsonEncodedText Required = JsonEncodedText.Encode("required");
    public static readonly JsonEncodedText Description = JsonEncodedText.Encode("description");
    public static readonly JsonEncodedText MinutesDuration = JsonEncodedText.Encode("minutesDuration");
    public static readonly JsonEncodedText ServiceType = JsonEncodedText.Encode("serviceType");
    public static readonly JsonEncodedText Created = JsonEncodedText.Encode("created");
    public static readonly JsonEncodedText Intent = JsonEncodedText.Encode("intent");
    public static readonly JsonEncodedText MedicationCodeableConcept = JsonEncodedText.Encode("medicationCodeableConcept");
    public static readonly JsonEncodedText Encounter = JsonEncodedText.Encode("encounter");
    public static readonly JsonEncodedText AuthoredOn = JsonEncodedText.Encode("authoredOn");
    public static readonly JsonEncodedText Requester = JsonEncodedText.Encode("requester");
    public static readonly JsonEncodedText DosageInstruction = JsonEncodedText.Encode("dosageInstruction");
    public static readonly JsonEncodedText Category = JsonEncodedText.Encode("category");
    public static readonly JsonEncodedText EffectiveDateTime = JsonEncodedText.Encode("effectiveDateTime");
    public static readonly JsonEncodedText Issued = JsonEncodedText.Encode("issued");
    public static readonly JsonEncodedText Performer = JsonEncodedText.Encode("performer");
    public static readonly JsonEncodedText ValueQuantity = JsonEncodedText.Encode("valueQuantity");
    public static readonly JsonEncodedText ValueCodeableConcept = JsonEncodedText.Encode("valueCodeableConcept");
    public static readonly JsonEncodedText Unit = JsonEncodedText.Encode("unit");
    public static readonly JsonEncodedText ReferenceRange = JsonEncodedText.Encode("referenceRange");
    public static readonly JsonEncodedText Low = JsonEncodedText.Encode("low");
    public static readonly JsonEncodedText High = JsonEncodedText.Encode("high");
    public static readonly JsonEncodedText Interpretation = JsonEncodedText.Encode("interpretation");
    public static readonly JsonEncodedText Result = JsonEncodedText.Encode("result");
    public static readonly JsonEncodedText Conclusion = JsonEncodedText.Encode("conclusion");
    public static readonly JsonEncodedText Date = JsonEncodedText.Encode("date");
    public static readonly JsonEncodedText Issuer = JsonEncodedText.Encode("issuer");
    public static readonly JsonEncodedText Recipient = JsonEncodedText.Encode("recipient");
    public static readonly JsonEncodedText TotalNet = JsonEncodedText.Encode("totalNet");
    public static readonly JsonEncodedText TotalGross = JsonEncodedText.Encode("totalGross");
    public static readonly JsonEncodedText Currency = JsonEncodedText.Encode("currency");
    public static readonly JsonEncodedText PaymentTerms = JsonEncodedText.Encode("paymentTerms");
    public static readonly JsonEncodedText Order = JsonEncodedText.Encode("order");
    public static readonly JsonEncodedText Dependent = JsonEncodedText.Encode("dependent");
}

// Code systems and fixed codes, pre-encoded.
internal static class Sys
{
    public static readonly JsonEncodedText FrCoreIdentifierType = JsonEncodedText.Encode("https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203");
    public static readonly JsonEncodedText InsNir = JsonEncodedText.Encode(Fhir.KnownIdentifierSystems.InsNir);
    public static readonly JsonEncodedText IdNatPs = JsonEncodedText.Encode(Fhir.KnownIdentifierSystems.IdNatPs);
    public static readonly JsonEncodedText IdNatStruct = JsonEncodedText.Encode(Fhir.KnownIdentifierSystems.IdNatStruct);
    public static readonly JsonEncodedText Rpps = JsonEncodedText.Encode(Fhir.KnownIdentifierSystems.Rpps);
    public static readonly JsonEncodedText Finess = JsonEncodedText.Encode(Fhir.KnownIdentifierSystems.Finess);
    public static readonly JsonEncodedText Loinc = JsonEncodedText.Encode("http://loinc.org");
    public static readonly JsonEncodedText Snomed = JsonEncodedText.Encode("http://snomed.info/sct");
    public static readonly JsonEncodedText Ucum = JsonEncodedText.Encode("http://unitsofmeasure.org");
    public static readonly JsonEncodedText Atc = JsonEncodedText.Encode("http://www.whocc.no/atc");
    public static readonly JsonEncodedText ActCode = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v3-ActCode");
    public static readonly JsonEncodedText MaritalStatus = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus");
    public static readonly JsonEncodedText ObservationCategory = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/observation-category");
    public static readonly JsonEncodedText ObservationInterpretation = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation");
    public static readonly JsonEncodedText DiagnosticServiceSection = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v2-0074");
    public static readonly JsonEncodedText OrganizationType = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/organization-type");
    public static readonly JsonEncodedText PractitionerRole = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/practitioner-role");
    public static readonly JsonEncodedText ParticipationType = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v3-ParticipationType");
    public static readonly JsonEncodedText SubscriberRelationship = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/subscriber-relationship");
    public static readonly JsonEncodedText CoverageType = JsonEncodedText.Encode("http://terminology.hl7.org/CodeSystem/v3-ActCode");
    public static readonly JsonEncodedText Bcp47 = JsonEncodedText.Encode("urn:ietf:bcp:47");
    public static readonly JsonEncodedText BirthPlaceExtension = JsonEncodedText.Encode("http://hl7.org/fhir/StructureDefinition/patient-birthPlace");
    public static readonly JsonEncodedText Phone = JsonEncodedText.Encode("phone");
    public static readonly JsonEncodedText Email = JsonEncodedText.Encode("email");
    public static readonly JsonEncodedText Home = JsonEncodedText.Encode("home");
    public static readonly JsonEncodedText Work = JsonEncodedText.Encode("work");
    public static readonly JsonEncodedText Mobile = JsonEncodedText.Encode("mobile");
    public static readonly JsonEncodedText Official = JsonEncodedText.Encode("official");
    public static readonly JsonEncodedText Usual = JsonEncodedText.Encode("usual");
    public static readonly JsonEncodedText Male = JsonEncodedText.Encode("male");
    public static readonly JsonEncodedText Female = JsonEncodedText.Encode("female");
    public static readonly JsonEncodedText Fr = JsonEncodedText.Encode("FR");
    public static readonly JsonEncodedText Eur = JsonEncodedText.Encode("EUR");
}
