using Vauban.Records;
using Vauban.Records.Search;

namespace Vauban.Tests.Records;

public class FrenchIdentifierTests
{
    [Theory]
    [InlineData("1800344109123")]
    [InlineData("2690775123987")]
    [InlineData("1851299123456")]
    public void An_NIR_with_its_computed_key_is_valid_with_or_without_spaces(string first13)
    {
        var nir = first13 + Nir.ComputeKey(first13);
        Assert.True(Nir.IsValid(nir));
        Assert.True(Nir.IsValid($"{nir[0]} {nir[1..3]} {nir[3..5]} {nir[5..7]} {nir[7..10]} {nir[10..13]} {nir[13..]}"));
    }

    [Fact]
    public void Corsican_NIRs_count_2A_as_19_and_2B_as_18()
    {
        var corsicaA = "180032A123456";
        var corsicaB = "180032B123456";
        Assert.Equal((97 - (long.Parse("1800319123456") % 97)).ToString("00"), Nir.ComputeKey(corsicaA));
        Assert.Equal((97 - (long.Parse("1800318123456") % 97)).ToString("00"), Nir.ComputeKey(corsicaB));
        Assert.True(Nir.IsValid(corsicaA + Nir.ComputeKey(corsicaA)));
        Assert.True(Nir.IsValid(corsicaB + Nir.ComputeKey(corsicaB)));
    }

    [Theory]
    [InlineData("180034410912399", "control key")]
    [InlineData("18003441091", "15 characters")]
    [InlineData("1800344109X2345", "only digits")]
    [InlineData("580034410912345", "starts with")]
    public void Invalid_NIRs_are_refused_with_a_reason(string nir, string reason)
    {
        Assert.False(Nir.TryValidate(nir, out var error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("+33 6 12 34 56 78", "0612345678")]
    [InlineData("0033612345678", "0612345678")]
    [InlineData("06.12.34.56.78", "0612345678")]
    [InlineData("+44 20 7946 0958", "+442079460958")]
    public void Phone_numbers_are_normalized_to_one_French_form(string input, string expected) =>
        Assert.Equal(expected, TextNormalizer.Phone(input));

    [Theory]
    [InlineData("Lefèvre-Hélias", "lefevrehelias")]
    [InlineData("LE GOFF", "legoff")]
    [InlineData("Œuvray", "oeuvray")]
    [InlineData("Muñoz", "munoz")]
    public void Names_fold_case_accents_and_punctuation(string input, string expected) =>
        Assert.Equal(expected, TextNormalizer.Fold(input));
}
