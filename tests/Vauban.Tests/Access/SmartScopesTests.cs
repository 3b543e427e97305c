using Vauban.Access;
using Vauban.Records;

namespace Vauban.Tests.Access;

public class SmartScopesTests
{
    private static SmartScopes Parse(string text)
    {
        Assert.True(SmartScopes.TryParse(text, TypeCodes.Names, out var scopes, out var error), error);
        return scopes;
    }

    [Fact]
    public void V2_scopes_grant_exactly_their_letters()
    {
        var scopes = Parse("system/Patient.rs system/Observation.c");
        Assert.True(scopes.Allows("Patient", Permission.Read));
        Assert.True(scopes.Allows("Patient", Permission.Search));
        Assert.False(scopes.Allows("Patient", Permission.Update));
        Assert.True(scopes.Allows("Observation", Permission.Create));
        Assert.False(scopes.Allows("Observation", Permission.Read));
        Assert.False(scopes.Allows("Encounter", Permission.Read));
    }

    [Fact]
    public void Wildcards_and_v1_forms_are_understood()
    {
        Assert.True(Parse("system/*.cruds").Allows("Invoice", Permission.Delete));
        Assert.True(Parse("system/Patient.read").Allows("Patient", Permission.Search));
        Assert.False(Parse("system/Patient.read").Allows("Patient", Permission.Create));
        Assert.True(Parse("system/*.write").Allows("Coverage", Permission.Update));
    }

    [Theory]
    [InlineData("system/Patient.sr")]
    [InlineData("system/Patient.xyz")]
    [InlineData("system/Spaceship.rs")]
    [InlineData("patient/Patient.rs")]
    [InlineData("openid")]
    public void Malformed_or_unknown_scopes_are_errors(string scope) =>
        Assert.False(SmartScopes.TryParse(scope, TypeCodes.Names, out _, out _));

    [Theory]
    [InlineData("system/Patient.rs\tsystem/Observation.rs", "separated by single spaces")]
    [InlineData("system/Observation.rs?category=laboratory", "narrowed by a query (SMART v2 granular scopes) are not supported")]
    public void A_tab_between_scopes_or_a_granular_scope_is_refused_saying_what_is_wrong(string text, string mentions)
    {
        Assert.False(SmartScopes.TryParse(text, TypeCodes.Names, out _, out var error));
        Assert.Contains(mentions, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_request_is_narrowed_to_what_the_client_was_registered_for()
    {
        var granted = SmartScopes.Intersect(Parse("system/*.cruds"), Parse("system/Patient.rs"), TypeCodes.Names);
        Assert.True(granted.Allows("Patient", Permission.Read));
        Assert.False(granted.Allows("Patient", Permission.Create));
        Assert.False(granted.Allows("Observation", Permission.Read));
    }
}
