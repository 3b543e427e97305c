// Search, conditional matching, _include/_revinclude and Patient/$everything. Results are limited
// to the caller's tenant in SQL, then pass the policy, guard and audit like any read.
using System.Data.Common;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    private const int MaxIncluded = 1000;

    /// <summary>Runs a search. <paramref name="page"/> is the opaque token of a next link; when given, <paramref name="parameters"/> are ignored.</summary>
    public async Task<SearchPage> SearchAsync(AccessContext context, string type, IReadOnlyList<KeyValuePair<string, string>> parameters, string? page, bool lenient, CancellationToken cancellationToken)
    {
        if (Check(context, Interaction.Search, type) is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        (string Value, long Rid)? after = null;
        if (page is not null)
        {
            var state = _pages.Open(page);
            if (state is null || state.Tenant != context.Tenant.Id || state.Principal != context.Principal.Id || state.Type != type
                || state.Expires < _time.GetUtcNow().ToUnixTimeMilliseconds())
            {
                return SearchPage.Fail(RecordStatus.Invalid, Issue.Invalid("The paging link is invalid or has expired; run the search again."));
            }
            parameters = state.Query.Select(p => new KeyValuePair<string, string>(p[0], p[1])).ToList();
            after = (state.SortValue, state.Rid);
        }
        var issues = new List<Issue>();
        var query = SearchQuery.Parse(type, parameters, keys, lenient, issues);
        if (query is null) return SearchPage.Fail(RecordStatus.Invalid, [.. issues]);
        // An include that names a type the principal may not read is refused; "any type" includes are narrowed
        // to the readable types (IncludesAsync filters them).
        foreach (var include in query.Includes)
        {
            var named = include.Reverse ? include.SourceType : include.TargetType ?? (include.Parameter.Targets is [var only] ? only : null);
            if (named is not null && !_policy.Authorize(context, Interaction.Read, named).Allowed)
            {
                return SearchPage.Fail(RecordStatus.Forbidden, Issue.Forbidden($"The granted scopes do not allow reading {named}, requested by _{(include.Reverse ? "rev" : "")}include."));
            }
        }

        await using var connection = await _database.OpenAsync(cancellationToken);
        if (query.SummaryCount || query.Count == 0)
        {
            var total = await CountAsync(context, connection, null, query, cancellationToken);
            await _audit.AppendAsync(context, Interaction.Search, type, [], succeeded: true, cancellationToken);
            return new SearchPage(RecordStatus.Ok, [], total, null);
        }

        var (rows, sortValues) = await QueryAsync(context, connection, null, query, after, cancellationToken);
        string? next = null;
        if (rows.Count > query.Count)
        {
            rows.RemoveAt(rows.Count - 1);
            next = _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, type, query.Canonical.Select(p => new[] { p.Name, p.Value }).ToList(),
                sortValues[rows.Count - 1], rows[^1].Rid, _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds()));
        }
        int? totalCount = null;
        if (query.TotalAccurate) totalCount = await CountAsync(context, connection, null, query, cancellationToken);
        else if (after is null && next is null) totalCount = rows.Count;

        var included = await AllowedAsync(context, (await IncludesAsync(connection, query, rows, context.Tenant.Id, cancellationToken))
            .Where(r => _policy.Authorize(context, Interaction.Read, TypeCodes.NameOf(r.Type)).Allowed).ToList(), cancellationToken);
        if (Admit(context, Interaction.Search, type, rows.Count + included.Count) is { } contained) return SearchPage.Fail(contained.Status, [.. contained.Issues!]);
        await _audit.AppendAsync(context, Interaction.Search, type, rows.Select(r => r.Id).ToList(), succeeded: true, cancellationToken);
        foreach (var group in included.GroupBy(r => r.Type))
        {
            await _audit.AppendAsync(context, Interaction.Read, TypeCodes.NameOf(group.Key), group.Select(r => r.Id).ToList(), succeeded: true, cancellationToken);
        }
        var entries = rows.Select(r => new SearchEntry(type, r.Id, r.Version, r.LastUpdated, Open(keys, r), false))
            .Concat(included.Select(r => new SearchEntry(TypeCodes.NameOf(r.Type), r.Id, r.Version, r.LastUpdated, Open(keys, r), true)))
            .ToList();
        return new SearchPage(RecordStatus.Ok, entries, totalCount, next);
    }

    /// <summary>Patient/$everything: the patient, every resource that refers to them, and the practitioners and organizations those refer to.</summary>
    public async Task<SearchPage> EverythingAsync(AccessContext context, string patientId, CancellationToken cancellationToken)
    {
        if (Check(context, Interaction.Everything, "Patient") is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        if (!IdRules.IsValid(patientId)) return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound("Not a valid id."));
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        await using var connection = await _database.OpenAsync(cancellationToken);
        var patient = await _rows.CurrentAsync(connection, null, context.Tenant.Id, TypeCodes.Of("Patient"), patientId, false, cancellationToken);
        if (patient is null || patient.Deleted)
        {
            await _audit.AppendAsync(context, Interaction.Everything, "Patient", [patientId], succeeded: false, cancellationToken);
            return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound($"Patient/{patientId} is not known."));
        }
        if (await CheckRecordAsync(context, Interaction.Everything, "Patient", patientId, patient.Compartment, patient.CreatedBy, null, cancellationToken) is { } refused)
        {
            return SearchPage.Fail(refused.Status, [.. refused.Issues!]);
        }
        var rows = new List<StoredVersion> { patient };
        using (var command = connection.Command($"""
            SELECT DISTINCT {SearchSql.Columns} FROM idx_ref x JOIN resources r ON r.rid = x.rid
            WHERE x.target = @p AND r.tenant_id = @t AND r.deleted = 0 ORDER BY r.rid LIMIT @n
            """).With("p", "Patient/" + patientId).With("t", context.Tenant.Id).With("n", 10_000))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) rows.Add(ResourceRows.ReadRow(reader));
        }
        // Only the types the principal may read.
        rows = await AllowedAsync(context, rows.Where(r => _policy.Authorize(context, Interaction.Read, TypeCodes.NameOf(r.Type)).Allowed).ToList(), cancellationToken);
        var referenced = await ReferencedAsync(connection, rows.Select(r => r.Rid).ToList(), null, ["Practitioner", "PractitionerRole", "Organization"], context.Tenant.Id, cancellationToken);
        referenced = await AllowedAsync(context, referenced.Where(r => _policy.Authorize(context, Interaction.Read, TypeCodes.NameOf(r.Type)).Allowed && rows.All(x => x.Rid != r.Rid)).ToList(), cancellationToken);
        rows.AddRange(referenced);
        if (Admit(context, Interaction.Everything, "Patient", rows.Count) is { } contained) return SearchPage.Fail(contained.Status, [.. contained.Issues!]);
        foreach (var group in rows.GroupBy(r => r.Type))
        {
            await _audit.AppendAsync(context, Interaction.Everything, TypeCodes.NameOf(group.Key), group.Select(r => r.Id).ToList(), succeeded: true, cancellationToken);
        }
        var entries = rows.Select(r => new SearchEntry(TypeCodes.NameOf(r.Type), r.Id, r.Version, r.LastUpdated, Open(keys, r), false)).ToList();
        return new SearchPage(RecordStatus.Ok, entries, entries.Count, null);
    }

    /// <summary>If-None-Exist: a create that matches exactly one resource returns it instead of creating; more than one is 412.</summary>
    private async Task<(RecordResult? Result, int Matches)> ConditionalMatchAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, string criteria, CancellationToken cancellationToken)
    {
        var parameters = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(criteria.StartsWith('?') ? criteria : "?" + criteria)
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList();
        var issues = new List<Issue>();
        var query = parameters.Count == 0 ? null : SearchQuery.Parse(type, parameters, keys, lenient: false, issues);
        if (query is null || query.Clauses.Count == 0)
        {
            if (issues.Count == 0) issues.Add(Issue.Invalid("If-None-Exist must be a search query such as identifier=system|value."));
            return (RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]), 0);
        }
        query.Count = 2;
        var (rows, _) = await QueryAsync(context, scope.Connection, scope.Transaction, query, null, cancellationToken);
        if (rows.Count == 0) return (null, 0);
        if (rows.Count > 1)
        {
            return (RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("duplicate", "If-None-Exist matches more than one resource; make the criteria more selective.")), rows.Count);
        }
        await _audit.AppendAsync(context, Interaction.Read, type, [rows[0].Id], succeeded: true, cancellationToken);
        return (new RecordResult(RecordStatus.Ok, type, rows[0].Id, rows[0].Version, rows[0].LastUpdated, Open(keys, rows[0])), 1);
    }

    private async Task<(List<StoredVersion> Rows, List<string> SortValues)> QueryAsync(AccessContext context, DbConnection connection, DbTransaction? transaction, SearchQuery query, (string, long)? after, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        SearchSql.Build(command, Engine, query, context.Tenant.Id, after, countOnly: false, _policy.FilterFor(context, query.Type, command, Engine));
        var rows = new List<StoredVersion>();
        var sortValues = new List<string>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(ResourceRows.ReadRow(reader));
            sortValues.Add(SearchSql.SortValue(query, reader.GetValue(10)));
        }
        return (rows, sortValues);
    }

    private async Task<int> CountAsync(AccessContext context, DbConnection connection, DbTransaction? transaction, SearchQuery query, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        SearchSql.Build(command, Engine, query, context.Tenant.Id, null, countOnly: true, _policy.FilterFor(context, query.Type, command, Engine));
        return (int)await command.ScalarLongAsync(cancellationToken);
    }

    /// <summary>The rows the policy lets the principal open (included and $everything rows; searches filter in SQL).</summary>
    private async Task<List<StoredVersion>> AllowedAsync(AccessContext context, List<StoredVersion> rows, CancellationToken cancellationToken)
    {
        var allowed = new List<StoredVersion>(rows.Count);
        foreach (var row in rows)
        {
            var decision = await _policy.AuthorizeRecordAsync(context, TypeCodes.NameOf(row.Type), row.Compartment, row.CreatedBy, null, cancellationToken);
            if (decision.Verdict == RecordVerdict.Allow) allowed.Add(row);
        }
        return allowed;
    }

    private async Task<List<StoredVersion>> IncludesAsync(DbConnection connection, SearchQuery query, List<StoredVersion> rows, long tenant, CancellationToken cancellationToken)
    {
        var included = new List<StoredVersion>();
        if (rows.Count == 0) return included;
        var seen = rows.Select(r => r.Rid).ToHashSet();
        foreach (var include in query.Includes)
        {
            var parameter = include.Parameter.AliasOf is null ? include.Parameter : SearchParameters.For(include.SourceType)[include.Parameter.AliasOf];
            var targetTypes = include.TargetType is { } t ? [t] : (include.Parameter.Targets ?? TypeCodes.Names.ToList());
            List<StoredVersion> found;
            if (!include.Reverse)
            {
                found = await ReferencedAsync(connection, rows.Select(r => r.Rid).ToList(), parameter.Code, targetTypes, tenant, cancellationToken);
            }
            else
            {
                found = [];
                using var command = connection.CreateCommand();
                var targets = rows.Select(r => query.Type + "/" + r.Id).ToList();
                command.CommandText = $"""
                    SELECT DISTINCT {SearchSql.Columns} FROM idx_ref x JOIN resources r ON r.rid = x.rid
                    WHERE {command.InList(Engine, "x.target", "tg", targets)} AND x.param = @p AND r.tenant_id = @t AND r.type = @ty AND r.deleted = 0
                    ORDER BY r.rid LIMIT @n
                    """;
                command.With("p", parameter.Code).With("t", tenant).With("ty", TypeCodes.Of(include.SourceType)).With("n", MaxIncluded);
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) found.Add(ResourceRows.ReadRow(reader));
            }
            foreach (var row in found)
            {
                if (included.Count >= MaxIncluded) break;
                if (seen.Add(row.Rid)) included.Add(row);
            }
        }
        return included;
    }

    /// <summary>Resources of the given types referenced (through <paramref name="param"/>, or any reference) by the given rows — in the same tenant only.</summary>
    private async Task<List<StoredVersion>> ReferencedAsync(DbConnection connection, List<long> sourceRids, int? param, IReadOnlyList<string> targetTypes, long tenant, CancellationToken cancellationToken)
    {
        var targets = new List<string>();
        for (var start = 0; start < sourceRids.Count; start += 500)
        {
            using var command = connection.CreateCommand();
            var chunk = sourceRids.Skip(start).Take(500).ToList();
            command.CommandText = $"SELECT DISTINCT x.target FROM idx_ref x WHERE {command.InList(Engine, "x.rid", "rids", chunk)}" + (param is null ? "" : " AND x.param = @p");
            if (param is not null) command.With("p", param.Value);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) targets.Add(reader.GetString(0));
        }
        var found = new List<StoredVersion>();
        foreach (var group in targets.Distinct().Select(t => t.Split('/')).Where(p => targetTypes.Contains(p[0])).GroupBy(p => p[0]))
        {
            var ids = group.Select(p => p[1]).Take(MaxIncluded).ToList();
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT {SearchSql.Columns} FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.deleted = 0 AND {command.InList(Engine, "r.id", "ids", ids)}";
            command.With("t", tenant).With("ty", TypeCodes.Of(group.Key));
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) found.Add(ResourceRows.ReadRow(reader));
        }
        return found;
    }
}
