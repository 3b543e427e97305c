// Establishments (hospital, clinic, laboratory, practice). Each is a tenant with its own keys; no
// record, index or token crosses from one to another.
using System.Collections.Concurrent;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

public sealed class Tenants
{
    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly AuditTrail _audit;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<long, Tenant> _byId = new();

    internal Tenants(StoreDatabase database, KeyRing keys, AuditTrail audit, TimeProvider time)
    {
        _database = database;
        _keys = keys;
        _audit = audit;
        _time = time;
    }

    /// <summary>Whether <paramref name="name"/> can name an establishment at all (a lookup's test). Stores made before
    /// <see cref="NameProblem"/> may hold names it now refuses for a new establishment ("...", "ＨＯＰ"): they are still found.</summary>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrWhiteSpace(name) && name.Length <= 100 && name.All(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>Why <paramref name="name"/> cannot name a new establishment, or null. Besides the characters a name may hold, it must
    /// read as what it holds and be typed back as it is: no invisible or control character, no compatibility form (full-width,
    /// styled or ligature letters, which Unicode compatibility normalization writes as plain ones), at least one letter or digit.</summary>
    public static string? NameProblem(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "An establishment needs a name.";
        // Not quoted back: an invisible character would make the quote show as another name.
        if (StatedText.HasHiddenCharacters(name)) return "An establishment name may not hold control or invisible characters (zero-width, direction overrides): type it plainly.";
        if (name.Length > 100) return "An establishment name is at most 100 characters.";
        var plain = CompatibilityForms.Plain(name);
        if (!string.Equals(plain, name, StringComparison.Ordinal))
            return $"The establishment name '{name}' is written with compatibility characters (full-width, styled or ligature letters): write it as '{plain}'.";
        if (!IsValidName(name)) return "An establishment name is 1 to 100 letters, digits, '-', '_' or '.'.";
        if (!name.Any(char.IsLetterOrDigit)) return $"An establishment name needs a letter or a digit ('{name}' is only punctuation).";
        var scripts = name.Where(char.IsLetter).Select(ScriptOf).Distinct().ToList();
        if (scripts.Count > 1)
            return $"The establishment name '{name}' mixes alphabets ({string.Join(" and ", scripts)}): a Cyrillic 'о' or a Greek 'ο' reads as a Latin 'o', so such a name can pass for another. Write it in one alphabet.";
        return null;
    }

    /// <summary>The alphabet a letter is written in, as far as names can be confused across them (UTS #39's mixed-script concern).</summary>
    private static string ScriptOf(char letter) => letter switch
    {
        <= '\u024F' or (>= '\u1E00' and <= '\u1EFF') or (>= '\u2C60' and <= '\u2C7F') or (>= '\uA720' and <= '\uA7FF') => "Latin",
        (>= '\u0370' and <= '\u03FF') or (>= '\u1F00' and <= '\u1FFF') => "Greek",
        (>= '\u0400' and <= '\u052F') or (>= '\u1C80' and <= '\u1C8F') or (>= '\u2DE0' and <= '\u2DFF') or (>= '\uA640' and <= '\uA69F') => "Cyrillic",
        (>= '\u0530' and <= '\u058F') => "Armenian",
        _ => "another alphabet",
    };

    /// <summary>Cyrillic and Greek letters (lower case: <see cref="Likeness"/> folds first) that read as a Latin one, after
    /// Unicode's confusables (UTS #39): a name written with them reads like its Latin twin.</summary>
    private static readonly Dictionary<char, char> Confusables = new()
    {
        // Cyrillic
        ['а'] = 'a', ['в'] = 'b', ['е'] = 'e', ['ё'] = 'e', ['һ'] = 'h', ['н'] = 'h', ['і'] = 'i', ['ї'] = 'i', ['ј'] = 'j', ['к'] = 'k', ['м'] = 'm',
        ['о'] = 'o', ['р'] = 'p', ['ԛ'] = 'q', ['с'] = 'c', ['ѕ'] = 's', ['т'] = 't', ['у'] = 'y', ['ԝ'] = 'w', ['х'] = 'x', ['ԁ'] = 'd', ['ү'] = 'y',
        ['ӏ'] = 'l',
        // Greek
        ['α'] = 'a', ['β'] = 'b', ['ε'] = 'e', ['η'] = 'h', ['ι'] = 'i', ['κ'] = 'k', ['μ'] = 'm', ['ν'] = 'v', ['ο'] = 'o', ['ρ'] = 'p', ['τ'] = 't',
        ['υ'] = 'y', ['χ'] = 'x', ['ζ'] = 'z',
    };

    /// <summary>The form in which two names that read alike are equal: Unicode compatibility normalization (NFKC: full-width,
    /// styled and ligature letters as plain ones) and case folding (upper then lower, invariant, so that 'ſ', 'ς' and the like
    /// fold with their plain letters), then Cyrillic and Greek letters that read as Latin ones as those. 'hop1', 'HOP1',
    /// 'ｈｏｐ１', 'Ｈop1' and the Cyrillic 'НОР1' are alike.</summary>
    public static string Likeness(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var folded = CompatibilityForms.Plain(CompatibilityForms.Plain(name).ToUpperInvariant().ToLowerInvariant());
        return string.Create(folded.Length, folded, static (span, text) =>
        {
            for (var i = 0; i < text.Length; i++) span[i] = Confusables.TryGetValue(text[i], out var latin) ? latin : text[i];
        });
    }

    public Task<Tenant> AddAsync(string name, CancellationToken cancellationToken) => AddAsync(name, null, cancellationToken);

    /// <summary>Creates the establishment as an administrative act of <paramref name="administrator"/> (given the new tenant):
    /// the act is the first entry of the tenant's own chain, written in the transaction that creates the tenant, its keys and
    /// its chain. If the entry cannot be written, there is no tenant (fail closed); no other chain could hold it, since
    /// an entry's principal and patient are indexed and sealed under the tenant's keys.</summary>
    public async Task<Tenant> AddAsync(string name, Func<Tenant, AccessContext>? administrator, CancellationToken cancellationToken)
    {
        var problem = NameProblem(name);
        // A name with invisible characters is refused before it is compared, and so never quoted back.
        if (string.IsNullOrEmpty(name) || StatedText.HasHiddenCharacters(name)) throw new ArgumentException(problem, nameof(name));
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        // Read and decided under the lock, so that two operators adding 'hop1' and 'HOP1' at once do not both succeed (SQLite
        // serializes writers; PostgreSQL takes the advisory lock).
        await _database.LockAsync(scope, "tenants add", cancellationToken);
        // A process started before another rotated the master key would wrap the new establishment's keys under the old one.
        await _keys.RefuseIfRotatedAsync(scope, cancellationToken);
        if (await AlikeAsync(scope, name, cancellationToken) is { } existing)
        {
            // A name like an existing one is a typo of it more often than a new establishment: `seed --tenant HOP1` would
            // otherwise fill a second establishment, with its own keys, beside 'hop1'.
            throw string.Equals(existing, name, StringComparison.Ordinal)
                ? new InvalidOperationException($"The establishment '{name}' already exists.")
                : new InvalidOperationException($"The name '{name}' is too like the establishment '{existing}' (the same once case and look-alike characters are set aside): use '{existing}', or choose a distinct name.");
        }
        // After the likeness, which says more about 'ＨＯＰ１' beside 'hop1' than its full-width letters do.
        if (problem is not null) throw new ArgumentException(problem, nameof(name));
        using var insert = scope.Command("INSERT INTO tenants (name, created_at) VALUES (@n, @c) RETURNING id")
            .With("n", name).With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
        var id = await insert.ScalarLongAsync(cancellationToken);
        using var keys = await _keys.CreateTenantKeysAsync(scope, id, cancellationToken);
        await AuditTrail.CreateHeadAsync(scope, id, cancellationToken);
        var tenant = new Tenant(id, name);
        if (administrator is not null)
        {
            await _audit.AppendAsync(scope, administrator(tenant), AuditAction.Administration, AuditOutcome.Success, null,
                [new AuditedRecord("tenant:" + name, null, null)], cancellationToken, "tenants add", keys);
        }
        else
        {
            await _audit.BeginChainAsync(scope, id, keys, cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
        return _byId[id] = tenant;
    }

    /// <summary>The existing establishment whose name reads like <paramref name="name"/> (<see cref="Likeness"/>), the same name
    /// first; null when none does.</summary>
    private static async Task<string?> AlikeAsync(WriteScope scope, string name, CancellationToken cancellationToken)
    {
        var likeness = Likeness(name);
        string? alike = null;
        using var command = scope.Command("SELECT name FROM tenants");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var existing = reader.GetString(0);
            if (string.Equals(existing, name, StringComparison.Ordinal)) return existing;
            if (alike is null && string.Equals(Likeness(existing), likeness, StringComparison.Ordinal)) alike = existing;
        }
        return alike;
    }

    /// <summary>The establishments whose names read like <paramref name="name"/> but are not it (for "did you mean …?").</summary>
    public async Task<IReadOnlyList<Tenant>> AlikeAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        var likeness = Likeness(name);
        return [.. (await ListAsync(cancellationToken)).Where(t => !string.Equals(t.Name, name, StringComparison.Ordinal) && string.Equals(Likeness(t.Name), likeness, StringComparison.Ordinal))];
    }

    /// <summary>The establishment named exactly <paramref name="name"/> (see <see cref="AlikeAsync(string, CancellationToken)"/> for a near miss).</summary>
    public async Task<Tenant?> FindAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants WHERE name = @n").With("n", name);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new Tenant(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    /// <summary>The establishment a person means by the name typed at sign-in: the one named exactly so, else the only one whose
    /// name reads like it (<see cref="Likeness"/>: 'chu-nord' typed for 'CHU-Nord'); null when none does, or several do (a store
    /// made before names had to differ by more than case). Names of new establishments cannot be alike, so the typed name is
    /// never taken for another establishment than the one its staff read on their badge.</summary>
    public async Task<Tenant?> FindTypedAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (await FindAsync(name, cancellationToken) is { } exact) return exact;
        return await AlikeAsync(name, cancellationToken) is [var only] ? only : null;
    }

    public async ValueTask<Tenant?> FindAsync(long id, CancellationToken cancellationToken)
    {
        if (_byId.TryGetValue(id, out var cached)) return cached;
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants WHERE id = @i").With("i", id);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return _byId[id] = new Tenant(reader.GetInt64(0), reader.GetString(1));
    }

    /// <summary>The establishments as <paramref name="scope"/>'s transaction sees them (under a lock, none added meanwhile), by id.</summary>
    internal static async Task<IReadOnlyList<Tenant>> ListAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        using var command = scope.Command("SELECT id, name FROM tenants ORDER BY id");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var tenants = new List<Tenant>();
        while (await reader.ReadAsync(cancellationToken)) tenants.Add(new Tenant(reader.GetInt64(0), reader.GetString(1)));
        return tenants;
    }

    public async Task<IReadOnlyList<Tenant>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants ORDER BY name");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var tenants = new List<Tenant>();
        while (await reader.ReadAsync(cancellationToken)) tenants.Add(new Tenant(reader.GetInt64(0), reader.GetString(1)));
        return tenants;
    }
}
