// Invariant 4: the database file, a dump of it and the server's log hold no plaintext name, NIR,
// phone, e-mail, address or clinical text. Canary values are written through the API, searched,
// updated, and then looked for in the raw bytes.
using System.Diagnostics;
using System.Net;
using System.Text;
using Npgsql;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class PlaintextLeakTests : IAsyncLifetime
{
    private static readonly string CanaryNir = Samples.ValidNir("2690775123987");

    // Each canary appears in the resources below; none may appear anywhere at rest or in the logs.
    private static readonly string[] Canaries =
    [
        "Zyxwvkanarie", "Quolibetine", CanaryNir, "0687654329", "87 65 43 29", "quolibetine.zyxwvkanarie@canari.example", "Rue du Canari Bleu",
        "Villecanarie", "Hyperkanaremia sévère",
    ];

    private readonly Engine _engine;
    private VaubanServer _server = null!;

    protected PlaintextLeakTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync() => _server = await VaubanServer.StartAsync(_engine, configure: o => o with
    {
        // Every export of this establishment waits for a second person (the alert test's approval).
        Guard = new Vauban.Guard.GuardOptions
        {
            Tenants = new Dictionary<string, Vauban.Guard.GuardTenantOptions> { ["hopital-alertes"] = new() { Export = new Vauban.Guard.ExportLimits { ApprovalAboveResources = 0 } } },
        },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Copied_database_dump_and_logs_contain_no_canary_value()
    {
        using var api = await _server.ClientAsync("hopital-canari");
        var patient = Samples.Patient(family: Canaries[0], given: Canaries[1], nir: CanaryNir, phone: "+33 6 87 65 43 29", email: Canaries[5], city: Canaries[7])
            .Replace("12 rue de la Paix", Canaries[6], StringComparison.Ordinal);
        string id;
        using (var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(patient)))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            id = (await created.BodyAsync()).GetProperty("id").GetString()!;
        }
        var note = Samples.Observation($"Patient/{id}").Replace("\"status\": \"final\",", $"\"status\": \"final\", \"note\": [{{ \"text\": \"{Canaries[8]}\" }}],", StringComparison.Ordinal);
        using (var observation = await api.PostAsync("/fhir/Observation", FhirContent.Json(note))) Assert.Equal(HttpStatusCode.Created, observation.StatusCode);
        // Searches carrying the canaries in their URLs, an update, and a refused request quoting them.
        foreach (var query in new[] { $"Patient?family={Canaries[0]}", $"Patient?identifier={CanaryNir}", $"Patient?email={Canaries[5]}", "Patient?phone=0687654329", $"Patient?address-city={Canaries[7]}", $"Patient?family={Canaries[0]}&birthdate=1980-03-12&unknown={Canaries[1]}" })
        {
            using (await api.GetAsync("/fhir/" + query)) { }
        }
        using (await api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(patient.Replace("\"resourceType\": \"Patient\",", $"\"resourceType\": \"Patient\", \"id\": \"{id}\",", StringComparison.Ordinal)))) { }
        using (await api.PostAsync("/fhir/Patient", FhirContent.Json(patient.Replace(CanaryNir, "269077512398700", StringComparison.Ordinal)))) { }
        // A conditional update and delete carry the NIR in their URL too: the first updates the patient, the second (another
        // family) matches nothing.
        using (var conditional = await api.PutAsync($"/fhir/Patient?identifier={CanaryNir}", FhirContent.Json(patient))) Assert.Equal(HttpStatusCode.OK, conditional.StatusCode);
        using (var conditional = await api.DeleteAsync($"/fhir/Patient?identifier={CanaryNir}&family={Canaries[1]}")) Assert.Equal(HttpStatusCode.NoContent, conditional.StatusCode);

        var atRest = _engine == Engine.Sqlite ? SqliteFiles() : await PgDumpAsync();
        var logs = _server.AllLogs();
        Assert.True(atRest.Length > 10_000, "the store should hold data");
        foreach (var canary in Canaries)
        {
            Assert.False(Contains(atRest, canary), $"'{canary}' found in clear in the {_engine} store");
            Assert.DoesNotContain(canary, logs, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Canaries_in_every_text_a_record_can_carry_are_in_clear_nowhere_at_rest_nor_in_the_logs()
    {
        // Each element a FHIR resource can carry identifying or clinical text in (names, telecom, addresses, identifiers of
        // any system, contacts, narrative, extensions, contained resources, notes, dosage, reasons, attachments, displays),
        // written through the API, updated, read, searched for (in the URL, also with mistakes the server answers), then
        // looked for in the store, the audit journal and the log with every level on.
        const string Nir = "271079912345693";
        using var api = await _server.ClientAsync("hopital-champs");
        async Task<string> CreateAsync(string type, string json)
        {
            using var created = await api.PostAsync("/fhir/" + type, FhirContent.Json(json));
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, body);
            return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
        }
        var patientJson = $$$"""
            {"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Qzknarrative</div>"},
             "extension":[{"url":"http://example.org/fhir/ext","valueString":"Qzkextension"}],
             "identifier":[{"system":"http://hopital.example/ipp","value":"QZKIPP4471"},{"system":"{{{Samples.InsNir}}}","value":"{{{Nir}}}"}],
             "name":[{"family":"Qzkfamily","given":["Qzkgiven"],"text":"Qzknametext"}],
             "telecom":[{"system":"phone","value":"06 99 88 77 66"},{"system":"email","value":"qzkmail@canari.example"},{"system":"url","value":"https://qzkurl.example"}],
             "address":[{"line":["Qzkline"],"city":"Qzkcity","district":"Qzkdistrict","postalCode":"75999","text":"Qzkaddresstext"}],
             "contact":[{"name":{"family":"Qzkcontact"},"telecom":[{"system":"phone","value":"0611112222"}],"address":{"city":"Qzkcontactcity"}}],
             "birthDate":"1971-07-07","gender":"female"}
            """;
        var patient = await CreateAsync("Patient", patientJson);
        var subject = $"\"subject\":{{\"reference\":\"Patient/{patient}\",\"display\":\"Qzkdisplay\"}}";
        var practitioner = await CreateAsync("Practitioner", """
            {"resourceType":"Practitioner","name":[{"family":"Qzkdoctor","given":["Qzkdoctorgiven"]}],"telecom":[{"system":"phone","value":"0655554444"}],
             "identifier":[{"system":"urn:oid:1.2.250.1.71.4.2.1","value":"10099988877"}],"address":[{"city":"Qzkdoctorcity"}]}
            """);
        await CreateAsync("Observation", $$$"""
            {"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}],"text":"Qzkcodetext"},{{{subject}}},
             "performer":[{"reference":"Practitioner/{{{practitioner}}}","display":"Qzkperformer"}],"valueString":"Qzkvaluestring","note":[{"text":"Qzkobservationnote"}]}
            """);
        await CreateAsync("DocumentReference", $$$"""
            {"resourceType":"DocumentReference","status":"current",{{{subject}}},"description":"Qzkdescription",
             "content":[{"attachment":{"contentType":"text/plain","title":"Qzktitle","data":"{{{Convert.ToBase64String(Encoding.UTF8.GetBytes("Qzkattachment"))}}}"}}]}
            """);
        await CreateAsync("MedicationRequest", $$$"""
            {"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"Qzkmedication"},{{{subject}}},
             "note":[{"text":"Qzkprescriptionnote"}],"dosageInstruction":[{"text":"Qzkdosage"}]}
            """);
        await CreateAsync("Encounter", $$$"""
            {"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},{{{subject}}},
             "reasonCode":[{"text":"Qzkreason"}],"period":{"start":"2026-03-01T10:00:00Z"}}
            """);
        await CreateAsync("Invoice", $$$"""{"resourceType":"Invoice","status":"issued",{{{subject}}},"note":[{"text":"Qzkinvoicenote"}],"identifier":[{"value":"QZKINVOICE77"}]}""");
        await CreateAsync("Coverage", $$$"""
            {"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/{{{patient}}}"},"payor":[{"reference":"#payor"}],
             "subscriberId":"QZKSUBSCRIBER","identifier":[{"system":"http://cpam.example","value":"QZKCOVERAGE88"}],
             "contained":[{"resourceType":"Organization","id":"payor","name":"Qzkcontained"}]}
            """);
        using (await api.PutAsync($"/fhir/Patient/{patient}", FhirContent.Json(patientJson.Replace("{\"resourceType\":\"Patient\",", $"{{\"resourceType\":\"Patient\",\"id\":\"{patient}\",", StringComparison.Ordinal)))) { }
        foreach (var query in new[]
        {
            $"Patient/{patient}", $"Patient/{patient}/_history", "Patient?family=Qzkfamily", "Patient?given=Qzkgiven&_count=Qzkcount", "Patient?name:contains=Qzkfamily",
            "Patient?phone=0699887766", "Patient?email=qzkmail@canari.example", $"Patient?identifier={Nir}", "Patient?identifier=http://hopital.example/ipp|QZKIPP4471",
            "Patient?address=Qzkline", "Patient?address-city=Qzkcity&birthdate=Qzkbirth", "Practitioner?family=Qzkdoctor", "Patient?Qzkunknown=Qzkfamily",
            $"Patient/{patient}/$everything",
        })
        {
            using (await api.GetAsync("/fhir/" + query)) { }
        }

        var atRest = (_engine == Engine.Sqlite ? SqliteFiles() : await PgDumpAsync()).Concat(JournalFiles()).ToArray();
        var logs = _server.AllLogs();
        string[] canaries =
        [
            "Qzknarrative", "Qzkextension", "QZKIPP4471", Nir, "Qzkfamily", "Qzkgiven", "Qzknametext", "0699887766", "99 88 77 66", "qzkmail", "qzkurl",
            "Qzkline", "Qzkcity", "Qzkdistrict", "Qzkaddresstext", "Qzkcontact", "0611112222", "Qzkdisplay", "Qzkdoctor", "0655554444", "10099988877",
            "Qzkcodetext", "Qzkperformer", "Qzkvaluestring", "Qzkobservationnote", "Qzkdescription", "Qzktitle", "Qzkattachment",
            Convert.ToBase64String(Encoding.UTF8.GetBytes("Qzkattachment")), "Qzkmedication", "Qzkprescriptionnote", "Qzkdosage", "Qzkreason",
            "Qzkinvoicenote", "QZKINVOICE77", "QZKSUBSCRIBER", "QZKCOVERAGE88", "Qzkcontained", "Qzkcount", "Qzkbirth", "Qzkunknown",
        ];
        foreach (var canary in canaries)
        {
            Assert.False(Contains(atRest, canary), $"'{canary}' found in clear in the {_engine} store or the audit journal");
            Assert.DoesNotContain(canary, logs, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Staff_names_in_security_alerts_and_who_released_or_decided_are_not_stored_in_clear()
    {
        // A physician breaks the glass (the alert names them), an operator whose system account is a person's name releases a
        // containment and approves an export, another asks for one: the officer reads every name back, the store holds none of them.
        const string Physician = "Kanariusz Zyxwvmedic", Operator = "zyxwvoperatrice", Asker = "zyxwvdemandeur";
        var tenant = await _server.Store.Tenants.AddAsync("hopital-alertes", CancellationToken.None);
        var patient = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Urgence"));
        await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner());
        var doctor = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:btg-1", Physician, Vauban.Access.StaffUser.PersonScopes)
        {
            Role = Vauban.Access.StaffRole.Physician, SessionId = "s-btg-1", AuthenticatedAt = DateTimeOffset.UtcNow,
        }, tenant, Vauban.Access.KnownPurposes.Treatment);
        Assert.Equal(Vauban.Access.BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(doctor, patient, Vauban.Access.KnownBreakGlassReasons.Emergency,
            "Unconscious on arrival", CancellationToken.None)).Status);

        var canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, tenant, 1, CancellationToken.None))[0];
        using (var client = await _server.ClientAsync("hopital-alertes", "system/Patient.rs"))
        using (var hit = await client.GetAsync($"/fhir/Patient/{canary}"))
        {
            Assert.Equal((HttpStatusCode)423, hit.StatusCode);
        }
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(tenant.Id, CancellationToken.None)).Principal;
        var operatorContext = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.System, "cli:" + Operator, "command line (" + Operator + ")",
            Vauban.Access.StaffUser.PersonScopes), tenant, "administration");
        Assert.Equal(1, (await _server.Store.Guard.ReleaseAsync(operatorContext, contained, CancellationToken.None)).Released);
        // A record the operator creates at the command line: its creator column names no OS account.
        using (var practitioner = System.Text.Json.JsonDocument.Parse(Samples.Practitioner("Directeur")))
        {
            Assert.Equal(Vauban.Records.RecordStatus.Created, (await _server.Store.Records.CreateAsync(operatorContext, "Practitioner", practitioner.RootElement, null, CancellationToken.None)).Status);
        }
        var requester = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.ApiClient, "registry-link", "registry link",
            Vauban.Access.StaffUser.PersonScopes), tenant, Vauban.Access.KnownPurposes.Treatment) { StatedReason = "Quarterly directory sync" };
        var export = await _server.Store.Records.ExportAsync(requester, Vauban.Records.ExportLevel.System, ["Practitioner"], null, "http://localhost/fhir/$export", CancellationToken.None);
        Assert.Equal(Vauban.Records.ExportStatus.AwaitingApproval, export.Job!.Status);
        Assert.Equal(Vauban.Guard.ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(operatorContext, export.Job.Id, approve: true, CancellationToken.None));
        Assert.True((await _server.Store.Records.ExportStatusAsync(requester, export.Job.Id, CancellationToken.None)).Job!.Approved); // still known as approved
        // An export asked for at the command line: its requester is the operator's system account.
        var asking = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.System, "cli:" + Asker, "command line (" + Asker + ")",
            Vauban.Access.StaffUser.PersonScopes), tenant, "administration") { StatedReason = "Annual archive" };
        var asked = await _server.Store.Records.ExportAsync(asking, Vauban.Records.ExportLevel.System, ["Practitioner"], null, "http://localhost/fhir/$export", CancellationToken.None);
        Assert.Equal(Vauban.Records.ExportStatus.AwaitingApproval, asked.Job!.Status);
        var pending = Assert.Single(await _server.Store.ExportApprovals.PendingAsync(tenant.Id, CancellationToken.None));
        Assert.Equal(("cli:" + Asker, "Annual archive"), (pending.Job.Principal, pending.Reason)); // the officer sees who asked and why
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await _server.Store.Records.ExportStatusAsync(asking, asked.Job.Id, CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.NotFound, (await _server.Store.Records.ExportStatusAsync(requester, asked.Job.Id, CancellationToken.None)).Status);

        var alerts = await _server.Store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None);
        Assert.Contains(alerts, a => a.Kind == Vauban.Access.KnownAlertKinds.BreakTheGlass && a.Detail.Contains(Physician, StringComparison.Ordinal));
        Assert.Contains(alerts, a => a.Kind == Vauban.Access.KnownAlertKinds.GuardReleased && a.Detail.Contains("cli:" + Operator, StringComparison.Ordinal));
        var atRest = _engine == Engine.Sqlite ? SqliteFiles() : await PgDumpAsync();
        foreach (var name in new[] { "Kanariusz", "Zyxwvmedic", Operator, Asker })
        {
            Assert.False(Contains(atRest, name), $"'{name}' found in clear in the {_engine} store");
        }
    }

    private static bool Contains(byte[] haystack, string needle) =>
        haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0
        || haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle.ToLowerInvariant())) >= 0
        || haystack.AsSpan().IndexOf(Encoding.Unicode.GetBytes(needle)) >= 0;

    /// <summary>The SQLite file with its write-ahead log, as a thief copying the data folder would get them.</summary>
    private byte[] SqliteFiles()
    {
        var bytes = new List<byte>();
        foreach (var path in new[] { _server.Db, _server.Db + "-wal", _server.Db + "-shm" })
        {
            if (!File.Exists(path)) continue;
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            bytes.AddRange(copy.ToArray());
        }
        return [.. bytes];
    }

    /// <summary>The audit journal's files (read-side entries on their way to the chain), copied as a thief would: with cat, which
    /// ignores the advisory lock the live process holds on its journal (.NET's own file reading would honour it).</summary>
    private byte[] JournalFiles()
    {
        var bytes = new List<byte>();
        var directory = _server.Store.Audit.JournalDirectory;
        if (!Directory.Exists(directory)) return [];
        foreach (var path in Directory.GetFiles(directory))
        {
            using var cat = Process.Start(new ProcessStartInfo("cat", [path]) { RedirectStandardOutput = true })!;
            using var copy = new MemoryStream();
            cat.StandardOutput.BaseStream.CopyTo(copy);
            cat.WaitForExit();
            bytes.AddRange(copy.ToArray());
        }
        Assert.NotEmpty(bytes); // the reads and searches above are journaled
        return [.. bytes];
    }

    private async Task<byte[]> PgDumpAsync()
    {
        var builder = new NpgsqlConnectionStringBuilder(_server.Db);
        var pgDump = Directory.GetDirectories("/usr/lib/postgresql").Order().Last() + "/bin/pg_dump";
        using var process = Process.Start(new ProcessStartInfo(pgDump, $"-h {builder.Host} -p {builder.Port} -U {builder.Username} {builder.Database}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        using var output = new MemoryStream();
        await process.StandardOutput.BaseStream.CopyToAsync(output);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync());
        return output.ToArray();
    }
}

public sealed class PlaintextLeakTests_Sqlite() : PlaintextLeakTests(Engine.Sqlite)
{
    [Fact]
    public async Task A_new_store_file_and_its_write_ahead_log_are_readable_by_their_owner_only()
    {
        // Another local account copying the data folder gets neither the sealed records nor what is stored in clear beside
        // them (references, dates of care, staff password hashes to guess offline).
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        using (var api = await server.ClientAsync("hopital-fichier"))
        using (var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient())))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        foreach (var path in new[] { server.Db, server.Db + "-wal", server.Db + "-shm" })
        {
            Assert.True(File.Exists(path), path);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
    }
}

public sealed class PlaintextLeakTests_Postgres() : PlaintextLeakTests(Engine.Postgres);
