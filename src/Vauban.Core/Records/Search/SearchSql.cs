// Turns a parsed search into one SQL statement over the index tables. The most selective clause drives
// (rid IN (…)); the others are probed per candidate with EXISTS on their primary keys. The tenant is
// always part of the WHERE clause: no search reaches another tenant's rows.
using System.Data.Common;
using System.Globalization;
using Vauban.Storage;

namespace Vauban.Records.Search;

internal static class SearchSql
{
    public const string Columns = "r.rid, r.tenant_id, r.type, r.id, r.version, r.last_updated, r.deleted, r.body";

    public static void Build(DbCommand command, StorageEngine engine, SearchQuery query, long tenant, (string Value, long Rid)? after, bool countOnly)
    {
        command.With("t", tenant).With("ty", TypeCodes.Of(query.Type));
        var where = new List<string> { "r.tenant_id = @t", "r.type = @ty", "r.deleted = 0" };
        var driver = query.Clauses.Where(c => !c.Negated && c.Selectivity <= 4).OrderBy(c => c.Selectivity).FirstOrDefault();
        for (var i = 0; i < query.Clauses.Count; i++)
        {
            var clause = query.Clauses[i];
            var name = "c" + i.ToString(CultureInfo.InvariantCulture);
            where.Add(ReferenceEquals(clause, driver) ? Driver(command, engine, clause, name) : Probe(command, engine, clause, name));
        }

        var sortExpression = SortExpression(query);
        if (countOnly)
        {
            command.CommandText = $"SELECT count(*) FROM resources r WHERE {string.Join(" AND ", where)}";
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
        command.With("n", query.Count + 1);
        command.CommandText = $"SELECT {Columns}, {sortExpression} AS sort_key FROM resources r WHERE {string.Join(" AND ", where)} ORDER BY sort_key {direction}, r.rid {direction} LIMIT @n";
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
            ? $"coalesce((SELECT max(d.hi) FROM idx_date d WHERE d.rid = r.rid AND d.param = {query.SortParameter!.Code.ToString(CultureInfo.InvariantCulture)}), {long.MinValue / 4})"
            : $"coalesce((SELECT min(d.lo) FROM idx_date d WHERE d.rid = r.rid AND d.param = {query.SortParameter!.Code.ToString(CultureInfo.InvariantCulture)}), {long.MaxValue / 4})",
    };

    private static string Driver(DbCommand command, StorageEngine engine, Clause clause, string name) => clause.Kind switch
    {
        ClauseKind.Hash => $"r.rid IN (SELECT x.rid FROM idx_hash x WHERE {command.InList(engine, "x.h", name, clause.Hashes)})",
        ClauseKind.Reference => $"r.rid IN (SELECT x.rid FROM idx_ref x WHERE {command.InList(engine, "x.target", name, clause.Targets)} AND {command.InList(engine, "x.param", name + "p", clause.Params)})",
        ClauseKind.Id => command.InList(engine, "r.id", name, clause.Ids),
        ClauseKind.Date => $"r.rid IN (SELECT x.rid FROM idx_date x WHERE x.tenant_id = @t AND x.param = {clause.Params[0].ToString(CultureInfo.InvariantCulture)} AND ({DateConditions(command, clause, name, "x.lo", "x.hi")}))",
        _ => DateConditions(command, clause, name, "r.last_updated", "r.last_updated"),
    };

    private static string Probe(DbCommand command, StorageEngine engine, Clause clause, string name)
    {
        var condition = clause.Kind switch
        {
            ClauseKind.Hash => $"EXISTS (SELECT 1 FROM idx_hash x WHERE x.rid = r.rid AND {command.InList(engine, "x.h", name, clause.Hashes)})",
            ClauseKind.Reference => $"EXISTS (SELECT 1 FROM idx_ref x WHERE x.rid = r.rid AND {command.InList(engine, "x.target", name, clause.Targets)} AND {command.InList(engine, "x.param", name + "p", clause.Params)})",
            ClauseKind.Date => $"EXISTS (SELECT 1 FROM idx_date x WHERE x.rid = r.rid AND x.param = {clause.Params[0].ToString(CultureInfo.InvariantCulture)} AND ({DateConditions(command, clause, name, "x.lo", "x.hi")}))",
            ClauseKind.Id => command.InList(engine, "r.id", name, clause.Ids),
            _ => DateConditions(command, clause, name, "r.last_updated", "r.last_updated"),
        };
        return clause.Negated ? $"NOT {condition}" : condition;
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
                "ap" => $"({lo} <= {b} + 86400000 AND {hi} >= {a} - 86400000)",
                _ => $"({lo} >= {a} AND {hi} <= {b})",
            });
        }
        return string.Join(" OR ", alternatives);
    }
}
