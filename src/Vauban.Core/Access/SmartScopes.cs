// SMART on FHIR scopes, v2 syntax (system/Patient.rs, system/*.cruds) with the v1 forms
// (system/Patient.read, system/*.write, system/*.*) accepted and translated.
namespace Vauban.Access;

[Flags]
public enum Permission
{
    None = 0,
    Create = 1,
    Read = 2,
    Update = 4,
    Delete = 8,
    Search = 16,
}

public sealed class SmartScopes
{
    private readonly Dictionary<string, Permission> _byType;
    private readonly Permission _wildcard;

    private SmartScopes(Dictionary<string, Permission> byType, Permission wildcard, IReadOnlyList<string> scopes)
    {
        _byType = byType;
        _wildcard = wildcard;
        Granted = scopes;
    }

    public IReadOnlyList<string> Granted { get; }

    public override string ToString() => string.Join(' ', Granted);

    public static SmartScopes None { get; } = new([], Permission.None, []);

    public bool Allows(string type, Permission permission) =>
        ((_byType.TryGetValue(type, out var p) ? p : Permission.None) | _wildcard).HasFlag(permission);

    /// <summary>Parses a space-separated scope list. Unknown or malformed scopes are errors, never silently dropped.</summary>
    public static bool TryParse(string? text, IReadOnlyCollection<string> knownTypes, out SmartScopes scopes, out string? error)
    {
        scopes = None;
        error = null;
        var byType = new Dictionary<string, Permission>(StringComparer.Ordinal);
        var wildcard = Permission.None;
        var granted = new List<string>();
        if ((text ?? "").Any(c => char.IsWhiteSpace(c) && c != ' '))
        {
            error = "Scopes are separated by single spaces (RFC 6749 section 3.3), not tabs or line breaks.";
            return false;
        }
        foreach (var scope in (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (scope.Contains('?', StringComparison.Ordinal))
            {
                // SMART v2 granular scopes (system/Observation.rs?category=laboratory): refused, not granted wider than asked.
                error = $"'{scope}': scopes narrowed by a query (SMART v2 granular scopes) are not supported; ask for the type's scope (e.g. system/Observation.rs).";
                return false;
            }
            if (!TryParseOne(scope, knownTypes, out var type, out var permission, out error)) return false;
            if (type == "*") wildcard |= permission;
            else byType[type] = (byType.TryGetValue(type, out var p) ? p : Permission.None) | permission;
            if (!granted.Contains(scope, StringComparer.Ordinal)) granted.Add(scope);
        }
        scopes = new SmartScopes(byType, wildcard, granted);
        return true;
    }

    /// <summary>Parses the scopes an API client is registered for or asks for: <c>system/</c> scopes only. The parser itself
    /// takes <c>user/</c> scopes too (a signed-in person's), which a client would otherwise get, silently, as system scopes.</summary>
    public static bool TryParseForClient(string? text, IReadOnlyCollection<string> knownTypes, out SmartScopes scopes, out string? error)
    {
        foreach (var scope in (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (scope.StartsWith("user/", StringComparison.Ordinal))
            {
                scopes = None;
                error = $"'{scope}': only system/ scopes are granted to API clients (user/ scopes come with a signed-in person).";
                return false;
            }
        }
        return TryParse(text, knownTypes, out scopes, out error);
    }

    /// <summary>The scopes of <paramref name="requested"/> that <paramref name="allowed"/> covers, as a new set (a client never gets more than it was registered for).</summary>
    public static SmartScopes Intersect(SmartScopes requested, SmartScopes allowed, IReadOnlyCollection<string> knownTypes)
    {
        ArgumentNullException.ThrowIfNull(requested);
        ArgumentNullException.ThrowIfNull(allowed);
        var byType = new Dictionary<string, Permission>(StringComparer.Ordinal);
        foreach (var scope in requested.Granted)
        {
            TryParseOne(scope, knownTypes, out var type, out var permission, out _);
            foreach (var t in type == "*" ? knownTypes : [type])
            {
                var kept = Permission.None;
                foreach (var flag in Enum.GetValues<Permission>())
                {
                    if (flag != Permission.None && permission.HasFlag(flag) && allowed.Allows(t, flag)) kept |= flag;
                }
                if (kept != Permission.None) byType[t] = (byType.TryGetValue(t, out var p) ? p : Permission.None) | kept;
            }
        }
        // Written back compactly: one wildcard scope when every type got the same permissions.
        var distinct = byType.Values.Distinct().ToList();
        if (byType.Count == knownTypes.Count && distinct.Count == 1)
        {
            return new SmartScopes([], distinct[0], [$"system/*.{Letters(distinct[0])}"]);
        }
        var granted = byType.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"system/{p.Key}.{Letters(p.Value)}").ToList();
        return new SmartScopes(byType, Permission.None, granted);
    }

    private static string Letters(Permission p) =>
        (p.HasFlag(Permission.Create) ? "c" : "") + (p.HasFlag(Permission.Read) ? "r" : "") + (p.HasFlag(Permission.Update) ? "u" : "")
        + (p.HasFlag(Permission.Delete) ? "d" : "") + (p.HasFlag(Permission.Search) ? "s" : "");

    private static bool TryParseOne(string scope, IReadOnlyCollection<string> knownTypes, out string type, out Permission permission, out string? error)
    {
        type = "";
        permission = Permission.None;
        error = null;
        var slash = scope.IndexOf('/', StringComparison.Ordinal);
        var dot = scope.LastIndexOf('.');
        if (slash <= 0 || dot < slash + 2 || dot == scope.Length - 1)
        {
            error = $"'{scope}' is not a SMART scope (expected e.g. system/Patient.rs).";
            return false;
        }
        var context = scope[..slash];
        if (context is not ("system" or "user"))
        {
            error = $"'{scope}': only system/ scopes are granted to API clients (user/ scopes come with a signed-in person).";
            return false;
        }
        type = scope[(slash + 1)..dot];
        if (type != "*" && !knownTypes.Contains(type))
        {
            error = $"'{scope}': {type} is not a resource type this server supports.";
            return false;
        }
        var actions = scope[(dot + 1)..];
        switch (actions)
        {
            case "read": permission = Permission.Read | Permission.Search; return true;
            case "write": permission = Permission.Create | Permission.Update | Permission.Delete; return true;
            case "*": permission = Permission.Create | Permission.Read | Permission.Update | Permission.Delete | Permission.Search; return true;
        }
        // v2: a subset of "cruds", in that order.
        var order = "cruds";
        var last = -1;
        foreach (var c in actions)
        {
            var position = order.IndexOf(c, StringComparison.Ordinal);
            if (position <= last)
            {
                error = $"'{scope}': '{actions}' is not a valid SMART v2 permission string (letters from c r u d s, in that order).";
                return false;
            }
            last = position;
            permission |= c switch { 'c' => Permission.Create, 'r' => Permission.Read, 'u' => Permission.Update, 'd' => Permission.Delete, _ => Permission.Search };
        }
        return true;
    }
}
