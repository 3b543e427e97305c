using Vauban.Records.Search;

namespace Vauban.Tests.Records;

public class SearchNormalizationTests
{
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
