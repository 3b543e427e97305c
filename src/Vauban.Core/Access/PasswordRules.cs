// Password rules of NIST SP 800-63B-4: a length window (default 8 to 256 characters, counted as
// user-perceived characters, so "é" is one whichever way it was typed), no composition rules, no periodic change, and refusal of
// common and breached passwords (list shipped in Resources/common-passwords.txt, see NOTICE) and of
// the account's own e-mail address or name. Passwords are hashed as typed: the build runs with invariant
// globalization, where .NET performs no Unicode normalization (NFKC, which NIST recommends, would need ICU).
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Identity;

namespace Vauban.Access;

public sealed class PasswordRules : IPasswordValidator<StaffUser>
{
    private static readonly Lazy<HashSet<string>> Blocklist = new(LoadBlocklist);
    private readonly AccountOptions _options;

    public PasswordRules(AccountOptions options) => _options = options;

    public static int BlocklistSize => Blocklist.Value.Count;

    public static bool IsBlocklisted(string password) => Blocklist.Value.Contains(Normalize(password));

    /// <summary>Why the password is refused, or null when it is acceptable for this account.</summary>
    public string? Check(string? password, string? email, string? displayName)
    {
        if (string.IsNullOrEmpty(password)) return "Choose a password.";
        var length = new StringInfo(password).LengthInTextElements;
        if (length < _options.PasswordMinLength) return $"Use at least {_options.PasswordMinLength} characters (a passphrase of several words is easiest).";
        if (length > _options.PasswordMaxLength) return $"Use at most {_options.PasswordMaxLength} characters.";
        var normalized = Normalize(password);
        if (Blocklist.Value.Contains(normalized)) return "This password is among the most common or breached passwords. Choose another.";
        foreach (var own in new[] { email, email?.Split('@')[0], displayName })
        {
            if (!string.IsNullOrWhiteSpace(own) && own.Length >= 3 && normalized.Contains(Normalize(own), StringComparison.Ordinal))
                return "The password must not contain your e-mail address or name.";
        }
        return null;
    }

    public Task<IdentityResult> ValidateAsync(UserManager<StaffUser> manager, StaffUser user, string? password)
    {
        ArgumentNullException.ThrowIfNull(user);
        var error = Check(password, user.Email, user.DisplayName);
        return Task.FromResult(error is null ? IdentityResult.Success : IdentityResult.Failed(new IdentityError { Code = "PasswordRejected", Description = error }));
    }

    private static string Normalize(string value) => value.ToUpperInvariant().Trim();

    private static HashSet<string> LoadBlocklist()
    {
        using var stream = typeof(PasswordRules).Assembly.GetManifestResourceStream("Vauban.Access.common-passwords.txt")
            ?? throw new InvalidOperationException("The password blocklist resource is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0) set.Add(Normalize(line));
        }
        return set;
    }
}
