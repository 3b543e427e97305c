// Turns a parsed search into one SQL statement over the index tables. The most selective clause drives
// (rid IN (…)); the others are probed per candidate with EXISTS on their primary keys, on SQLite before
// the candidate's resource row is read. The tenant is always part of the WHERE clause: no search reaches
// another tenant's rows.
using System.Data.Common;
using System.Globalization;
using Vauban.Storage;

namespace Vauban.Records.Search;

internal static class SearchSql
{
    public const string Columns = "r.rid, r.tenant_id, r.type, r.id, r.version, r.last_updated, r.deleted, r.body, r.compartment, r.created_by";

    /// <param name="allowed">The access policy's filter on "r" (see AccessPolicy.FilterFor), or null: part of the WHERE clause, so that counts and pages never include what the searcher may not open.</param>
    /// <param name="candidates">When positive: at most this many rows instead of a page, for the policy to screen in memory;
    /// with <paramref name="narrow"/> only (rid, compartment, sort key).</param>
    public static void Build(DbCommand command, StorageEngine engine, SearchQuery query, long tenant, (string Value, long Rid)? after, bool countOnly, string? allowed,
        int candidates = 0, bool narrow = false)
    {
        command.With("t", tenant).With("ty", TypeCodes.Of(query.Type));
        var where = new List<string> { "r.tenant_id = @t", "r.type = @ty", "r.deleted = 0" };
        // On PostgreSQL hash clauses are GIN conditions on the resource row, combined by the planner: they never drive.
        var driver = query.Clauses.Where(c => !c.Negated && c.Selectivity <= 4 && c.Kind != ClauseKind.LastUpdated && c.Alone.Count == 0
            && !(engine == StorageEngine.Postgres && c.Kind == ClauseKind.Hash)).OrderBy(c => c.Selectivity).FirstOrDefault();
        var from = "resources r";
        var probes = new List<string>();
        var early = new List<string>();
        for (var i = 0; i < query.Clauses.Count; i++)
        {
            var clause = query.Clauses[i];
            var name = "c" + i.ToString(CultureInfo.InvariantCulture);
            if (ReferenceEquals(clause, driver))
            {
                // The selective clause drives: its candidate rows are found first, then each resource row by
                // primary key. CROSS JOIN fixes that order on SQLite (whose planner would otherwise scan the
                // type's rows and test membership); PostgreSQL plans joins from its statistics either way.
                from = $"({Driver(command, engine, clause, name)}) d CROSS JOIN resources r";
                where.Add("r.rid = d.rid");
            }
            else if (driver is not null && engine == StorageEngine.Sqlite && clause.Kind is ClauseKind.Hash or ClauseKind.Reference or ClauseKind.Date)
            {
                early.Add(Probe(command, engine, clause, name, "d.rid"));
            }
            else
            {
                probes.Add(Probe(command, engine, clause, name, "r.rid"));
            }
        }

        // SQLite: the index probes test the driver's row ids, so that only the candidates that pass them have their resource
        // row read (a row is ~1.3 KB, and at a million patients reading it was most of a search: two pages from the operating
        // system's cache for each of the ~30 patients born on the searched day). Inside CASE, or SQLite (3.53) turns each
        // EXISTS into a join placed after the resource row (bench/README.md).
        if (early.Count > 0) where.Insert(0, $"CASE WHEN {string.Join(" AND ", early)} THEN 1 ELSE 0 END");

        // The policy's filter costs more per row than the index probes, so it must run only on rows that pass them.
        // SQLite (3.53) turns top-level EXISTS terms into joins placed after other subqueries, which would test
        // the policy on every driver candidate; inside CASE the order is the one written. PostgreSQL plans by cost
        // (and needs the hash terms at the top level for its GIN index).
        if (allowed is null || probes.Count == 0 || engine == StorageEngine.Postgres)
        {
            where.AddRange(probes);
            if (allowed is not null) where.Add(allowed);
        }
        else
        {
            where.Add($"CASE WHEN {string.Join(" AND ", probes)} THEN ({allowed}) ELSE 0 END");
        }

        var sortExpression = SortExpression(query);
        if (countOnly)
        {
            command.CommandText = $"SELECT count(*) FROM {from} WHERE {string.Join(" AND ", where)}";
            return;
        }
        if (after is { } cursor)
        {
            var comparison = query.SortDescending ? "<" : ">";
            command.With("cv", ParseSortValue(query, cursor.Value)).With("cr", cursor.Rid);
            where.Add(sortExpression == "r.rid"
                ? $"r.rid {comparison} @cr"
                : $"(({sortExpression}) {comparison} @cv OR (({sortExpression}) = @cv AND r.rid {comparison} @cr))");
        }
        var direction = query.SortDescending ? "DESC" : "ASC";
        command.CommandText = $"SELECT {(narrow ? "r.rid, r.compartment" : Columns)}, {sortExpression} AS sort_key FROM {from} WHERE {string.Join(" AND ", where)} ORDER BY sort_key {direction}, r.rid {direction}"
            + Sql.Limit(candidates > 0 ? candidates : query.Count + 1);
    }

    public static string SortValue(SearchQuery query, object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";

    private static object ParseSortValue(SearchQuery query, string value) =>
        query.SortKey == "_id" ? value : long.Parse(value, CultureInfo.InvariantCulture);

    private static string SortExpression(SearchQuery query) => query.SortKey switch
    {
        "" => "r.rid",
        "_lastUpdated" => "r.last_updated",
        "_id" => "r.id",
        _ => query.SortDescending
            ? $"coalesce((SELECT max(s.hi) FROM idx_date s WHERE s.rid = r.rid AND s.param = {query.SortParameter!.Code.ToString(CultureInfo.InvariantCulture)}), {long.MinValue / 4})"
            : $"coalesce((SELECT min(s.lo) FROM idx_date s WHERE s.rid = r.rid AND s.param = {query.SortParameter!.Code.ToString(CultureInfo.InvariantCulture)}), {long.MaxValue / 4})",
    };

    /// <summary>The distinct row ids matching the driving clause.</summary>
    private static string Driver(DbCommand command, StorageEngine engine, Clause clause, string name) => clause.Kind switch
    {
        // One hash value yields each rid once (the key is (h, rid)): DISTINCT only when several values are OR-ed.
        ClauseKind.Hash => $"SELECT {(clause.Hashes.Count > 1 ? "DISTINCT " : "")}x.rid FROM idx_hash x WHERE {command.InList(engine, "x.h", name, clause.Hashes)}",
        ClauseKind.Reference => $"SELECT DISTINCT x.rid FROM idx_ref x WHERE {command.InList(engine, "x.target", name, clause.Targets)} AND {command.InList(engine, "x.param", name + "p", clause.Params)}",
        ClauseKind.Id => $"SELECT k.rid FROM resources k WHERE k.tenant_id = @t AND k.type = @ty AND {command.InList(engine, "k.id", name, clause.Ids)}",
        _ => $"SELECT DISTINCT x.rid FROM idx_date x WHERE x.tenant_id = @t AND x.param = {clause.Params[0].ToString(CultureInfo.InvariantCulture)} AND ({DateConditions(command, clause, name, "x.lo", "x.hi")})",
    };

    /// <param name="rid">The candidate's row id: "r.rid", or "d.rid" (the driver's) for an index probe made before the row is read.</param>
    private static string Probe(DbCommand command, StorageEngine engine, Clause clause, string name, string rid)
    {
        var condition = clause.Kind switch
        {
            ClauseKind.Hash when clause.Alone.Count > 0 => HashesOrAlone(command, engine, clause, name, rid),
            ClauseKind.Hash => AnyHash(command, engine, name, rid, clause.Hashes),
            ClauseKind.Reference => $"EXISTS (SELECT 1 FROM idx_ref x WHERE x.rid = {rid} AND {command.InList(engine, "x.target", name, clause.Targets)} AND {command.InList(engine, "x.param", name + "p", clause.Params)})",
            ClauseKind.Date => $"EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = {rid} AND x.param = {clause.Params[0].ToString(CultureInfo.InvariantCulture)} AND ({DateConditions(command, clause, name, "x.lo", "x.hi")}))",
            ClauseKind.Id => command.InList(engine, "r.id", name, clause.Ids),
            _ => DateConditions(command, clause, name, "r.last_updated", "r.last_updated"),
        };
        if (!clause.Negated) return condition;
        return clause.Present.Count == 0 ? $"NOT ({condition})" : $"NOT ({condition}) AND {AnyHash(command, engine, name + "p", rid, clause.Present)}";
    }

    private static string HashArray(DbCommand command, string name, List<long> hashes)
    {
        command.With(name, hashes.ToArray());
        return $"@{name}";
    }

    /// <summary>The resource has any of <paramref name="hashes"/>: on PostgreSQL a GIN condition on its row, on SQLite a probe of idx_hash.</summary>
    private static string AnyHash(DbCommand command, StorageEngine engine, string name, string rid, List<long> hashes) => engine == StorageEngine.Postgres
        ? $"r.hashes && {HashArray(command, name, hashes)}"
        : $"EXISTS (SELECT 1 FROM idx_hash x WHERE x.rid = {rid} AND {command.InList(engine, "x.h", name, hashes)})";

    /// <summary>Any of the clause's hashes, or one of its <see cref="Clause.Alone"/> hashes without the hashes listed with it.</summary>
    private static string HashesOrAlone(DbCommand command, StorageEngine engine, Clause clause, string name, string rid)
    {
        var alternatives = new List<string> { AnyHash(command, engine, name, rid, clause.Hashes) };
        for (var i = 0; i < clause.Alone.Count; i++)
        {
            var n = name + "a" + i.ToString(CultureInfo.InvariantCulture);
            alternatives.Add($"({AnyHash(command, engine, n, rid, [clause.Alone[i].Hash])} AND NOT {AnyHash(command, engine, n + "x", rid, clause.Alone[i].Without)})");
        }
        return $"({string.Join(" OR ", alternatives)})";
    }

    /// <summary>FHIR date prefixes over ranges: the resource covers [lo, hi], the search value [a, b]. Alternatives are OR-ed.</summary>
    private static string DateConditions(DbCommand command, Clause clause, string name, string lo, string hi)
    {
        var alternatives = new List<string>();
        for (var i = 0; i < clause.Ranges.Count; i++)
        {
            var (prefix, low, high) = clause.Ranges[i];
            var a = $"@{name}a{i.ToString(CultureInfo.InvariantCulture)}";
            var b = $"@{name}b{i.ToString(CultureInfo.InvariantCulture)}";
            command.With(a[1..], low).With(b[1..], high);
            alternatives.Add(prefix switch
            {
                "ne" => $"NOT ({lo} >= {a} AND {hi} <= {b})",
                "gt" => $"{hi} > {b}",
                "lt" => $"{lo} < {a}",
                "ge" => $"{hi} >= {a}",
                "le" => $"{lo} <= {b}",
                "sa" => $"{lo} > {b}",
                "eb" => $"{hi} < {a}",
                "ap" => $"({lo} <= {b} AND {hi} >= {a})", // the range already widened (SearchQuery.Approximated)
                _ => $"({lo} >= {a} AND {hi} <= {b})",
            });
        }
        return string.Join(" OR ", alternatives);
    }
}
