// The rows that grant or limit access — API clients, their tokens, staff sessions, staff accounts and their passkeys, recovery
// codes and enrolment links, break-the-glass grants — carry a MAC (HMAC-SHA-256 under the store's row-authentication key, Crypto.RowKey) over every
// column that grants or limits access (ADR 0014). Whoever can write the database without the master key (a DBA, a reporting
// tool's role, an injection in another application, a tampered backup) could otherwise insert a token, widen a client, take
// over a session or an account, and Vauban would decrypt for them. A table is added by declaring its
// columns here; the MAC is computed in one place, AuthenticatedTable.Mac, from the values written or read.
using System.Data.Common;
using System.Globalization;
using System.Text;
using Vauban.Audit;
using Vauban.Crypto;

namespace Vauban.Access;

/// <summary>A table whose rows grant or limit access: the columns its rows' MAC covers, in order, and how a row is named in a
/// report (never by a secret: no token hash, no secret hash).</summary>
internal sealed class AuthenticatedTable
{
    /// <summary>The MAC's format, in its domain tag: a change to a table's columns or to the encoding is a new version.</summary>
    public const int FormatVersion = 1;

    private readonly byte[] _domain;
    private readonly Dictionary<string, int> _index;
    private readonly Func<AuthenticatedRow, string> _describe;
    private readonly string _namedBy;

    private AuthenticatedTable(int step, string name, string key, string namedBy, string[] columns, Func<AuthenticatedRow, string> describe)
    {
        Step = step;
        Name = name;
        Key = key;
        _namedBy = namedBy;
        Columns = columns;
        _index = columns.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        if (!_index.ContainsKey(key) || !_index.ContainsKey(namedBy) || !_index.ContainsKey("tenant_id")) throw new ArgumentException($"{name}: the key and tenant_id are among the columns authenticated.");
        _describe = describe;
        _domain = Encoding.UTF8.GetBytes($"vauban-row/{name}/{FormatVersion}");
    }

    /// <summary>The schema step that gave the table its MAC: the migration that applies it authenticates the rows that exist then, and
    /// no other (a later step's upgrade vouches for no row of this table).</summary>
    public int Step { get; }

    /// <summary>The table in the database.</summary>
    public string Name { get; }

    /// <summary>Its primary key column (a row is rewritten by it).</summary>
    public string Key { get; }

    /// <summary>The columns the MAC covers, in the order it covers them. Not those that change on every request and that no check
    /// trusts (a session's last_seen_at, its source address).</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>API clients: who they are, in which establishment, how they authenticate, what they may do, for what purpose.
    /// The name is shown as the principal of their acts.</summary>
    public static readonly AuthenticatedTable Clients = new(21, "clients", "client_id", "client_id",
        ["client_id", "tenant_id", "name", "secret_hash", "jwks", "scopes", "disabled", "patient_limit", "own_only", "purpose"],
        row => "client " + row.Shown("client_id"));

    /// <summary>Access tokens: named by the id the audit log gives them (72 bits of the token's hash), never the hash itself.</summary>
    public static readonly AuthenticatedTable AccessTokens = new(21, "access_tokens", "token_hash", "token_hash",
        ["token_hash", "client_id", "tenant_id", "scopes", "expires_at"],
        row => "access token " + TokenId(row) + " of client " + row.Shown("client_id"));

    private static string TokenId(AuthenticatedRow row) => row["token_hash"] is byte[] { Length: >= 9 } hash ? ApiClients.TokenId(hash) : "(malformed)";

    /// <summary>Staff sessions: whose, at which stage, since when, its proof of both factors, its passkey ceremony, and the account's
    /// security stamp when it opened (a session is one only while the account still holds it: a copy of its row put back after a
    /// reset, a lock or a revocation, which change the stamp, is none). Not
    /// last_seen_at (written twice a minute; it only extends the idle limit of a session whose cookie one must still hold; created_at
    /// bounds it absolutely) nor source (the address it began from, which no check trusts).</summary>
    public static readonly AuthenticatedTable StaffSessions = new(21, "staff_sessions", "id", "id",
        ["id", "token_hash", "tenant_id", "user_id", "stage", "created_at", "authenticated_at", "ceremony", "security_stamp"],
        row => "staff session " + row.Shown("id") + (row["user_id"] is null ? "" : " of account " + row.Shown("user_id")));

    /// <summary>Staff accounts: who the person is to the access policy (establishment, role, the practitioner and the service care
    /// relationships name), which e-mail signs into it (its blind index), how they sign in (password hash, whether an authenticator is
    /// confirmed, the security stamp a session's start and a credentials' write hold to) and whether it is locked. Not the sealed
    /// e-mail and name nor the sealed authenticator key: AES-GCM under the establishment's key, bound to the account, they are not
    /// made or moved without that key, and the data-key rotation re-seals them in place. Nor what every attempt changes and only
    /// counts towards a lock or against a replay: access_failed_count, totp_last_step.</summary>
    public static readonly AuthenticatedTable StaffUsers = new(22, "staff_users", "id", "id",
        ["id", "tenant_id", "email_index", "role", "practitioner", "service", "password_hash", "security_stamp", "two_factor_enabled", "lockout_end"],
        row => "staff account " + row.Shown("id"));

    /// <summary>Passkeys: the credential, the account it signs in and its public key and counter (data). Not created_at (order only).</summary>
    public static readonly AuthenticatedTable StaffPasskeys = new(22, "staff_passkeys", "credential_id", "user_id",
        ["credential_id", "tenant_id", "user_id", "data"],
        row => "passkey of account " + row.Shown("user_id"));

    /// <summary>Recovery codes: the code's hash and its account; named by the account, never by the hash.</summary>
    public static readonly AuthenticatedTable StaffRecoveryCodes = new(22, "staff_recovery_codes", "code_hash", "user_id",
        ["code_hash", "tenant_id", "user_id"],
        row => "recovery code of account " + row.Shown("user_id"));

    /// <summary>Enrolment links, whose use resets an account's credentials: the link's hash, its account, its end and the account's
    /// security stamp when it was issued (a link used once, or cancelled by a lock, and put back is no link: its use reset the stamp).</summary>
    public static readonly AuthenticatedTable EnrolmentTokens = new(22, "enrolment_tokens", "token_hash", "user_id",
        ["token_hash", "tenant_id", "user_id", "expires_at", "security_stamp"],
        row => "enrolment link of account " + row.Shown("user_id"));

    /// <summary>Break-the-glass grants (schema step 23): each opens a patient's whole record to a person, outside their care
    /// relationships, until it ends. Every column that says who, for which patient, from when and until when, and the id the audit
    /// chain knows the grant by. Not the reason nor the sealed explanation: the officer reads them, no decision does (the explanation is
    /// sealed under the establishment's key and bound to the grant's principal, patient and time; both are on the chain, digested).
    /// Named by its id and its holder, never by its patient.</summary>
    public static readonly AuthenticatedTable Grants = new(23, "break_glass", "id", "id",
        ["id", "tenant_id", "principal", "session", "patient", "granted_at", "expires_at"],
        row => "break-the-glass grant " + row.Shown("id") + " of " + row.Shown("principal"));

    public static IReadOnlyList<AuthenticatedTable> All { get; } = [Clients, AccessTokens, StaffSessions, StaffUsers, StaffPasskeys, StaffRecoveryCodes, EnrolmentTokens, Grants];

    internal int IndexOf(string column) =>
        _index.TryGetValue(column, out var i) ? i : throw new ArgumentException($"{Name} has no authenticated column '{column}'.", nameof(column));

    /// <summary>The authenticated columns and the MAC, for an INSERT's column list: "client_id, …, mac".</summary>
    public string ColumnList => string.Join(", ", Columns) + ", mac";

    /// <summary>The authenticated columns and the MAC, as a select list, for <see cref="Read"/>: "c.client_id, …, c.mac".</summary>
    public string Select(string alias) => string.Join(", ", Columns.Select(c => alias + "." + c)) + ", " + alias + ".mac";

    /// <summary>The row the reader is on, from <paramref name="first"/>: the columns of <see cref="Select"/>, in its order.</summary>
    public AuthenticatedRow Read(DbDataReader reader, int first)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var values = new object?[Columns.Count];
        for (var i = 0; i < values.Length; i++) values[i] = Normal(reader.GetValue(first + i));
        var mac = reader.GetValue(first + values.Length) as byte[];
        return new AuthenticatedRow(this, values, mac);
    }

    /// <summary>A row as it is about to be written: every authenticated column, each once.</summary>
    public AuthenticatedRow Row(params (string Column, object? Value)[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var row = new object?[Columns.Count];
        var given = new bool[Columns.Count];
        foreach (var (column, value) in values)
        {
            var i = IndexOf(column);
            if (given[i]) throw new ArgumentException($"{Name}.{column} given twice.", nameof(values));
            given[i] = true;
            row[i] = Normal(value);
        }
        if (Array.IndexOf(given, false) is var missing and >= 0) throw new ArgumentException($"{Name}.{Columns[missing]} not given.", nameof(values));
        return new AuthenticatedRow(this, row, null);
    }

    /// <summary>The MAC of <paramref name="row"/>'s values: the one place each table's MAC is computed. Over a domain tag (the table
    /// and the format version), then each column's name and value with its kind and length (DigestInput's canonical form), so that
    /// no two rows' values run together into the same bytes.</summary>
    public byte[] Mac(RowKey key, AuthenticatedRow row)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(row);
        if (row.Table != this) throw new ArgumentException($"A row of {row.Table.Name}, not of {Name}.", nameof(row));
        var input = new DigestInput();
        input.Begin(_domain);
        for (var i = 0; i < Columns.Count; i++)
        {
            input.Field(Columns[i]);
            input.Field(row.Values[i]);
        }
        return input.Finish(key);
    }

    /// <summary>The row in words for a report: the table's noun and its non-secret id.</summary>
    public string Describe(AuthenticatedRow row) => _describe(row);

    /// <summary>The non-secret id a report names the row by (what `vauban audit remove-row --id` takes): a client's id, a token's audit
    /// id, a session's or an account's id; a passkey, a recovery code or an enrolment link by its account's id. "(unreadable)" for an id
    /// no Vauban writes (<see cref="AuthenticatedRow.Shown"/>).</summary>
    public string Id(AuthenticatedRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return _namedBy == "token_hash" ? TokenId(row) : row.Shown(_namedBy);
    }

    /// <summary>A value as the MAC covers it: null, a long (any integer, a boolean as 0 or 1), a string or bytes. Anything else
    /// (a REAL an insider stored in SQLite) by its text, marked so that it matches nothing Vauban writes.</summary>
    internal static object? Normal(object? value) => value switch
    {
        null or DBNull => null,
        long or string or byte[] => value,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        bool flag => flag ? 1L : 0L,
        _ => new UnopenedValue(Encoding.UTF8.GetBytes(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "")),
    };
}

/// <summary>A row of an <see cref="AuthenticatedTable"/>: its authenticated values (null, long, string or bytes) and the MAC it
/// carries (null when none).</summary>
internal sealed class AuthenticatedRow
{
    private readonly object?[] _values;

    internal AuthenticatedRow(AuthenticatedTable table, object?[] values, byte[]? mac)
    {
        Table = table;
        _values = values;
        Mac = mac;
    }

    public AuthenticatedTable Table { get; }

    public IReadOnlyList<object?> Values => _values;

    /// <summary>The MAC the row carries in the database; null for one written before step 21 and not yet authenticated, or for a
    /// row about to be written.</summary>
    public byte[]? Mac { get; }

    public object? this[string column] => _values[Table.IndexOf(column)];

    public string? Text(string column) => this[column] as string;

    public long? Number(string column) => this[column] as long?;

    public byte[]? Bytes(string column) => this[column] as byte[];

    /// <summary>The row's primary key, as read or written.</summary>
    public object? KeyValue => this[Table.Key];

    /// <summary>The establishment the row names (null for a session not yet signed in).</summary>
    public long? TenantId => Number("tenant_id");

    /// <summary>The same row with <paramref name="column"/> set to <paramref name="value"/>, about to be written (no MAC yet).</summary>
    public AuthenticatedRow With(string column, object? value)
    {
        var values = (object?[])_values.Clone();
        values[Table.IndexOf(column)] = AuthenticatedTable.Normal(value);
        return new AuthenticatedRow(Table, values, null);
    }

    /// <summary>A text column for a report or a log line: an id as Vauban makes them (letters, digits, '_', '-', '.', ':'; at most
    /// 64; a number, as a grant's id), or "(unreadable)" — an insider's row may hold anything, line breaks and escape sequences included.</summary>
    public string Shown(string column) =>
        this[column] is long number ? number.ToString(CultureInfo.InvariantCulture) :
        this[column] is string { Length: > 0 and <= 64 } text && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':') ? text : "(unreadable)";
}
