// Which failures mean the store cannot be reached or written at the moment — PostgreSQL stopped, restarting or failed over
// to a standby, its connection pool exhausted, a full disk, a SQLite file locked by another process — so that a request
// meets 503 and a retry, not 500, and the operator's log names the cause. Named by code, never by the exception's message
// (a database's message may quote a row).
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Vauban.Storage;

internal static class StoreFailures
{
    /// <summary>The cause, safe to log, when <paramref name="error"/> (or an exception it wraps) is the store being
    /// unavailable; null for anything else.</summary>
    public static string? UnavailableCause(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                // 57P01-57P03: shut down or restarting; 25006: a read-only transaction, i.e. a standby (after a failover);
                // 40P01, 40001: a deadlock or serialization failure PostgreSQL broke by aborting this transaction (nothing of it
                // was written; two bundles locking patients in opposite orders, ADR 0006); the rest Npgsql deems transient
                // (connection failures, too many connections, disk full, out of memory…).
                case PostgresException postgres when postgres.IsTransient || postgres.SqlState is "57P01" or "57P02" or "57P03" or "25006" or "40P01" or "40001":
                    return $"PostgreSQL SQL state {postgres.SqlState}";
                case PostgresException:
                    return null;
                // Raised by Npgsql itself, not by the server: the connection could not be made, was lost, or waited too long.
                case NpgsqlException npgsql:
                    return npgsql.InnerException is TimeoutException
                        ? "PostgreSQL did not answer in time, or every connection of the pool was in use"
                        : "PostgreSQL cannot be reached, or the connection was lost";
                case SqliteException sqlite when (sqlite.SqliteErrorCode & 0xFF) is var code && SqliteCauses.TryGetValue(code, out var name):
                    return $"SQLite error {code} ({name})";
            }
        }
        return null;
    }

    /// <summary>What to do when <paramref name="error"/> is a SQLite store that cannot be written or opened for writing (read-only
    /// file or folder, a file owned by another account): every verb writes, if only the audit entry of what it read.</summary>
    public static string? WriteAccessHint(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is SqliteException sqlite && (sqlite.SqliteErrorCode & 0xFF) is 8 or 14)
            {
                return "Vauban writes to the store's file and to its folder (its -wal and -shm files live beside it), even to read: every "
                    + "act goes on the store's audit log. Check their owner and permissions; to examine a read-only copy (a backup, a "
                    + "snapshot), copy it somewhere writable first.";
            }
        }
        return null;
    }

    /// <summary>A database error that is not the store being unavailable (<see cref="UnavailableCause"/>), as an operator may be shown
    /// it: SQLite's code and its own words, which name tables and columns, never a row's values; PostgreSQL's SQL state and what it
    /// means, never the server's words, which may quote a row's values ("Key (id)=(…) already exists"). Null for anything else.</summary>
    public static string? Described(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SqliteException sqlite:
                    return SqliteWords(sqlite);
                case PostgresException postgres:
                    return $"PostgreSQL SQL state {postgres.SqlState}{(PostgresStates.TryGetValue(postgres.SqlState, out var name) ? $" ({name})" : "")}";
                case NpgsqlException:
                    return "PostgreSQL cannot be reached, or the connection was lost";
            }
        }
        return null;
    }

    /// <summary>"SQLite error 1 (no such table: guard_canaries: the store is damaged, …)": its code, SQLite's own words without
    /// Microsoft.Data.Sqlite's quoting ("SQLite Error 1: 'no such table: guard_canaries'.") and what Vauban knows of it; a code
    /// of the store being unavailable by its cause alone ("SQLite error 5 (database locked by another process)").</summary>
    public static string SqliteWords(SqliteException sqlite)
    {
        ArgumentNullException.ThrowIfNull(sqlite);
        var code = sqlite.SqliteErrorCode & 0xFF;
        var message = sqlite.Message;
        var start = message.IndexOf(": '", StringComparison.Ordinal);
        var words = start >= 0 && message.EndsWith("'.", StringComparison.Ordinal) ? message[(start + 3)..^2] : message;
        if (SqliteCauses.TryGetValue(code, out var cause)) return $"SQLite error {code} ({cause})";
        return SqliteErrors.TryGetValue(code, out var meaning) ? $"SQLite error {code} ({words}: {meaning})" : $"SQLite error {code} ({words})";
    }

    private const string ChangedOutside = "the store is damaged, or its schema was changed outside Vauban";

    /// <summary>What the SQLite codes that are not the store being unavailable mean to an operator.</summary>
    private static readonly Dictionary<int, string> SqliteErrors = new()
    {
        [1] = ChangedOutside,
        [11] = "the database file is damaged",
        [19] = "a row this command writes is there already, or one it names is not",
        [26] = "not a SQLite database: another kind of file, or an encrypted one",
    };

    /// <summary>What the PostgreSQL SQL states an operator may meet mean (the server's own words are never shown).</summary>
    /// <summary>What Vauban knows of a PostgreSQL SQL state, in words: named beside the code wherever an error is told by its code
    /// (a verb's failure here; a connection that cannot be opened, PostgresDatabase).</summary>
    internal static readonly Dictionary<string, string> PostgresStates = new(StringComparer.Ordinal)
    {
        ["23505"] = "a row this command writes is there already",
        ["23503"] = "a row this command names is not there",
        ["42P01"] = "a table is missing: " + ChangedOutside,
        ["42703"] = "a column is missing: " + ChangedOutside,
        ["42501"] = "the database user lacks a privilege on Vauban's tables",
        ["57014"] = "the statement was cancelled, or ran past statement_timeout",
        ["55P03"] = "a lock was not granted in time (lock_timeout)",
        ["28P01"] = "wrong password",
        ["28000"] = "this user may not connect: no such role, or refused by pg_hba.conf",
        ["3D000"] = "no such database",
        ["42704"] = "an unknown setting",
        ["53300"] = "too many connections",
        ["57P03"] = "the server is starting or stopping",
    };

    private static readonly Dictionary<int, string> SqliteCauses = new()
    {
        [5] = "database locked by another process",
        [6] = "table locked",
        [8] = "read-only file or folder",
        [10] = "disk I/O error",
        [13] = "disk full",
        [14] = "cannot open the file",
    };
}
