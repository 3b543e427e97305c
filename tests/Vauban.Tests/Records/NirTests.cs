using Vauban.Records;

namespace Vauban.Tests.Records;

// Valid examples are built from the rule (key = 97 - first 13 digits mod 97), not taken from real people.
public class NirTests
{
    [Theory]
    [InlineData("185057800608491")] // man, born May 1985 in the Yvelines
    [InlineData("288091305509835")] // woman, born September 1988 in Marseille
    [InlineData("269052A00412314")] // Corse-du-Sud: 2A counts as 19 for the key
    [InlineData("180122B03304536")] // Haute-Corse: 2B counts as 18 for the key
    [InlineData("269052000412384")] // born in Corsica before 1976: department 20
    [InlineData("785059935001234")] // temporary number (NIA), born abroad (99, Morocco)
    [InlineData("185427505612301")] // fictitious month 42
    [InlineData("185257505612320")] // month 25 (incomplete civil-status record)
    public void A_NIR_whose_key_matches_is_valid(string nir)
    {
        Assert.True(Nir.IsValid(nir));
        Assert.True(Nir.TryValidate(nir, out var error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("1850578006084", "91")]
    [InlineData("269052A004123", "14")]
    [InlineData("180122B033045", "36")]
    [InlineData("1 85 42 75 056 123", "01")]
    public void The_key_is_computed_from_the_first_13_characters(string first13, string key)
    {
        Assert.Equal(key, Nir.ComputeKey(first13));
    }

    [Fact]
    public void A_Corsican_NIR_keyed_as_if_the_department_were_20_is_rejected()
    {
        Assert.False(Nir.TryValidate("269052A00412384", out var error));
        Assert.Contains("control key", error);
    }

    [Theory]
    [InlineData("185057800608490")]
    [InlineData("185057800608492")]
    [InlineData("285057800608491")] // one digit changed, old key
    public void A_NIR_with_a_wrong_key_is_rejected(string nir)
    {
        Assert.False(Nir.TryValidate(nir, out var error));
        Assert.Contains("control key", error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("18505780060849")]
    [InlineData("1850578006084911")]
    [InlineData("1850578006084")]
    public void A_NIR_of_the_wrong_length_is_rejected(string nir)
    {
        Assert.False(Nir.TryValidate(nir, out var error));
        Assert.Contains("15 characters", error);
    }

    [Theory]
    [InlineData("18505780060849X")]
    [InlineData("1850578OO608491")] // letter O for zero
    [InlineData("1850A7800608491")] // a letter outside the department
    [InlineData("18505C800608491")] // C is not a Corsican department
    [InlineData("1850578006-8491")]
    public void A_NIR_with_letters_or_punctuation_is_rejected(string nir)
    {
        Assert.False(Nir.TryValidate(nir, out var error));
        Assert.Contains("digits", error);
    }

    [Theory]
    [InlineData("585057800608491", "first digit")] // sex 5 does not exist
    [InlineData("185137800608491", "month")] // month 13
    [InlineData("185197800608491", "month")] // month 19
    [InlineData("185007800608491", "month")] // month 00
    [InlineData("185450078006084", "month")] // month 45
    [InlineData("185050000608491", "department")] // department 00
    [InlineData("185057800600091", "order number")] // order 000
    public void A_NIR_that_no_rule_allows_is_rejected_with_the_reason(string nir, string reason)
    {
        Assert.False(Nir.TryValidate(nir, out var error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("1 85 05 78 006 084 91", "185057800608491")]
    [InlineData("2 69 05 2a 004 123 14", "269052A00412314")]
    [InlineData(" 185057800608491\t", "185057800608491")]
    [InlineData("1\u00A085\u00A005 78 006 084 91", "185057800608491")]
    public void Spaces_are_allowed_and_normalized_away(string input, string compact)
    {
        Assert.True(Nir.IsValid(input));
        Assert.Equal(compact, Nir.Normalize(input));
    }

    [Fact]
    public void Normalizing_an_invalid_NIR_gives_null()
    {
        Assert.Null(Nir.Normalize("1 85 05 78 006 084 90"));
        Assert.False(Nir.IsValid(null));
    }

    [Fact]
    public void Error_messages_do_not_repeat_the_number()
    {
        Assert.False(Nir.TryValidate("185057800608490", out var error));
        Assert.DoesNotContain("1850578", error);
    }

    [Fact]
    public void Computing_a_key_from_malformed_input_throws()
    {
        Assert.Throws<ArgumentException>(() => Nir.ComputeKey("18505780060"));
        Assert.Throws<ArgumentException>(() => Nir.ComputeKey("1850578X06084"));
    }
}
