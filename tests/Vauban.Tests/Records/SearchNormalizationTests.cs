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

    [Theory]
    [InlineData("2 69 05 2a 004 123 14", "269052A00412314")] // a NIR typed with spaces and Corsica in lower case
    [InlineData("2\u00A069\u00A005\u00A02A\u00A0004\u00A0123\u00A014", "269052A00412314")] // pasted with no-break spaces
    [InlineData("2\u202F69 05 2b 004 123 14", "2 69 05 2b 004 123 14")] // not a NIR (the key is 2A's): only the spaces go
    [InlineData("\tIPP-00a12 ", "IPP-00a12")] // an IPP keeps its case
    [InlineData("269052a00412314", "269052A00412314")]
    [InlineData("2\u200269 05 2A\u3000004 123 14", "269052A00412314")] // other white space a NIR's validation accepts: en space, ideographic
    public void Identifiers_lose_typed_spaces_and_a_NIR_takes_its_compact_form(string input, string expected) =>
        Assert.Equal(expected.Replace(" ", "", StringComparison.Ordinal), TextNormalizer.Identifier(input));
}
