// NIST SP 800-63B-4 password rules, and the RFC 6238 reference vectors of the TOTP code.
using Vauban.Access;

namespace Vauban.Tests.People;

public class PasswordRulesTests
{
    private readonly PasswordRules _rules = new(new AccountOptions());

    [Fact]
    public void The_shipped_blocklist_has_over_ten_thousand_entries_and_is_case_insensitive()
    {
        Assert.True(PasswordRules.BlocklistSize >= 10_000, PasswordRules.BlocklistSize.ToString());
        Assert.NotNull(_rules.Check("password1", null, null));
        Assert.NotNull(_rules.Check("PassWord1", null, null));
        Assert.NotNull(_rules.Check("qwertyuiop", null, null));
        Assert.NotNull(_rules.Check("ILOVEYOU", null, null));
    }

    [Theory]
    [InlineData("sevenCh")]          // too short
    [InlineData("")]
    public void Too_short_is_refused(string password) => Assert.NotNull(_rules.Check(password, null, null));

    [Theory]
    [InlineData("correct horse battery staple")] // no composition rule: lower case and spaces only
    [InlineData("ñandú éléphant çà")]            // Unicode allowed
    [InlineData("zq8vkmwt")]                      // exactly 8
    [InlineData("lapin bleu sur la colline de Montmartre, au printemps, avec 3 tulipes et un parapluie")] // > 64
    public void Long_enough_uncommon_passwords_are_accepted_without_composition_rules(string password) =>
        Assert.Null(_rules.Check(password, "claire.martin@chu.example", "Dr Claire Martin"));

    [Fact]
    public void Over_the_maximum_is_refused() => Assert.NotNull(_rules.Check(new string('x', 200) + new string('y', 57), null, null));

    [Fact]
    public void The_email_or_name_itself_is_refused()
    {
        Assert.NotNull(_rules.Check("claire.martin@chu.example", "claire.martin@chu.example", null));
        Assert.NotNull(_rules.Check("Claire.Martin2026", "claire.martin@chu.example", null));
        Assert.NotNull(_rules.Check("dr claire martin!", null, "Dr Claire Martin"));
    }

    [Fact]
    public void Minimum_is_configurable_but_not_below_8()
    {
        Assert.NotNull(new PasswordRules(new AccountOptions { PasswordMinLength = 15 }).Check("zq8vkmwtzq8vkm", null, null));
        Assert.Throws<VaubanConfigurationException>(() => new AccountOptions { PasswordMinLength = 6 }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => new AccountOptions { PasswordIterations = 100_000 }.Validate());
    }

    [Theory] // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", last 6 of the 8 digits.
    [InlineData(59, "287082")]
    [InlineData(1111111109, "081804")]
    [InlineData(1234567890, "005924")]
    [InlineData(20000000000, "353130")]
    public void Totp_matches_the_RFC_6238_vectors(long unixSeconds, string expected)
    {
        var key = System.Text.Encoding.ASCII.GetBytes("12345678901234567890");
        Assert.Equal(expected, TotpAuthenticator.Code(key, unixSeconds / 30));
        Assert.Equal(expected, Infrastructure.Totp.Code(key, unixSeconds / 30, 6));
    }
}
