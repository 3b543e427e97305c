// Small ADO.NET conveniences shared by every storage query.
using System.Data.Common;
using System.Globalization;

namespace Vauban.Storage;

internal static class Sql
{
    public static DbCommand Command(this DbConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        return command;
    }

    public static DbCommand With(this DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return command;
    }

    /// <summary>" LIMIT n", the count written into the statement's text. Never a bound LIMIT: SQLite (3.53) plans with a bound
    /// LIMIT's value and so marks the statement expired each time the parameter is bound again, and every execution parsed and
    /// planned the statement anew — a search spent more time in SQLite's parser and planner than in its query (bench/README.md).</summary>
    public static string Limit(int count) => " LIMIT " + count.ToString(CultureInfo.InvariantCulture);

    public static async Task<long> ScalarLongAsync(this DbCommand command, CancellationToken cancellationToken) =>
        Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);

    /// <summary>"col IN (@p0, @p1, …)" on SQLite, "col = ANY(@p)" on PostgreSQL (one array parameter, one plan).</summary>
    public static string InList<T>(this DbCommand command, StorageEngine engine, string column, string prefix, IReadOnlyList<T> values)
    {
        if (values.Count == 0) return "1 = 0";
        if (engine == StorageEngine.Postgres)
        {
            command.With(prefix, values.ToArray());
            return $"{column} = ANY(@{prefix})";
        }
        var names = new string[values.Count];
        for (var i = 0; i < values.Count; i++)
        {
            names[i] = "@" + prefix + "_" + i.ToString(CultureInfo.InvariantCulture);
            command.With(prefix + "_" + i.ToString(CultureInfo.InvariantCulture), values[i]);
        }
        return $"{column} IN ({string.Join(", ", names)})";
    }
}
