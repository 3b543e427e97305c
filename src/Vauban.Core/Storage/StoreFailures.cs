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
