// The SQL statements a test's server runs against its own database, on either engine, to count what a request costs and to
// see which tables it reads. SQLite: every connection to the database's file opened after Watch (the store opens its first
// while starting, after the `configure` callback of VaubanServer.StartAsync) gets a statement trace (sqlite3_trace_v2), installed
// by an automatic extension, so connections of the store's own (its read sessions, the audit appender's) are seen too.
// PostgreSQL: Npgsql's activities (one per command or batch) of the test's database. Other tests' statements are not logged.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Npgsql;

namespace Vauban.Tests.Infrastructure;

public sealed class StatementLog : IDisposable
{
    private readonly ConcurrentQueue<string> _statements = new();
    private readonly int _id;
    private readonly ActivityListener? _listener;
    private volatile bool _recording;

    private StatementLog(int id, ActivityListener? listener)
    {
        _id = id;
        _listener = listener;
    }

    /// <summary>Logs the statements run against <paramref name="db"/> (a SQLite file, or a PostgreSQL connection string) while
    /// recording (<see cref="Start"/>). Call it before the store opens the database: in VaubanServer.StartAsync's configure.</summary>
    public static StatementLog Watch(string db)
    {
        ArgumentNullException.ThrowIfNull(db);
        var id = Interlocked.Increment(ref _nextId);
        if (!Vauban.Storage.StoreDatabase.LooksLikePostgres(db))
        {
            var log = new StatementLog(id, null);
            Logs[id] = log;
            SqliteTrace.Watch(Path.GetFullPath(db), id);
            return log;
        }
        var database = new NpgsqlConnectionStringBuilder(db).Database;
        StatementLog? created = null;
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (created is { _recording: true } log && Equals(activity.GetTagItem("db.namespace"), database))
                    log._statements.Enqueue(activity.GetTagItem("db.query.text") as string ?? activity.DisplayName);
            },
        };
        created = new StatementLog(id, listener);
        ActivitySource.AddActivityListener(listener);
        return created;
    }

    /// <summary>Forgets what was logged and logs from now on.</summary>
    public void Start()
    {
        _statements.Clear();
        _recording = true;
    }

    /// <summary>Stops logging and returns the statements logged since <see cref="Start"/>, in the order they began.</summary>
    public IReadOnlyList<string> Stop()
    {
        _recording = false;
        return [.. _statements];
    }

    public void Dispose()
    {
        _recording = false;
        _listener?.Dispose();
        Logs.TryRemove(_id, out _);
        SqliteTrace.Forget(_id);
    }

    private static int _nextId;
    private static readonly ConcurrentDictionary<int, StatementLog> Logs = new();

    /// <summary>The SQLite side: an automatic extension registered once for the process, which gives each new connection to a
    /// watched file a trace whose context is the log's id (a log gone, its connections' statements go nowhere).</summary>
    private static class SqliteTrace
    {
        private const uint TraceStatement = 0x01; // SQLITE_TRACE_STMT
        private static readonly ConcurrentDictionary<string, int> Files = new(StringComparer.Ordinal);
        private static readonly EntryPoint Entry = OnOpen;
        private static readonly TraceCallback Trace = OnStatement;
        private static readonly Lazy<bool> Registered = new(() => sqlite3_auto_extension(Marshal.GetFunctionPointerForDelegate(Entry)) == 0);

        public static void Watch(string file, int id)
        {
            Files[file] = id;
            if (!Registered.Value) throw new InvalidOperationException("sqlite3_auto_extension failed");
        }

        public static void Forget(int id)
        {
            foreach (var (file, watched) in Files)
            {
                if (watched == id) Files.TryRemove(file, out _);
            }
        }

        private static int OnOpen(IntPtr db, IntPtr error, IntPtr api)
        {
            if (Marshal.PtrToStringUTF8(sqlite3_db_filename(db, "main")) is { Length: > 0 } file && Files.TryGetValue(file, out var id))
                _ = sqlite3_trace_v2(db, TraceStatement, Marshal.GetFunctionPointerForDelegate(Trace), id);
            return 0;
        }

        private static int OnStatement(uint type, IntPtr context, IntPtr statement, IntPtr text)
        {
            // A trigger's statements come as "-- …" comments: the statement that fired it is counted.
            if (Logs.TryGetValue(checked((int)context), out var log) && log._recording && Marshal.PtrToStringUTF8(text) is { } sql && !sql.StartsWith("--", StringComparison.Ordinal))
                log._statements.Enqueue(sql);
            return 0;
        }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int EntryPoint(IntPtr db, IntPtr error, IntPtr api);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int TraceCallback(uint type, IntPtr context, IntPtr statement, IntPtr text);

        [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
        private static extern int sqlite3_auto_extension(IntPtr entryPoint);

        [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
        private static extern int sqlite3_trace_v2(IntPtr db, uint mask, IntPtr callback, IntPtr context);

        [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
        private static extern IntPtr sqlite3_db_filename(IntPtr db, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);
    }
}
