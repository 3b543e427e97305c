// A text sealed together with the principal it is from or about, for rows that must name a principal without holding the
// name in clear: the row's principal column holds the audit chain's blind index of the principal (AuditChain.PrincipalReference,
// for matching), and the principal itself is read back only by opening the sealed text. A principal at the command line is
// "cli:<operating-system user>", which may be a person's name.
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vauban.Crypto;

internal sealed record AttributedText(string Principal, string Text)
{
    /// <summary>The record version these are sealed with; version 1 of the same type code held the text alone.</summary>
    public const int Version = 2;

    public byte[] Seal(TenantKeys keys, int typeCode, string binding) => RecordCipher.Seal(keys, typeCode, binding, Version, Plain(), compress: false);

    /// <summary>What <see cref="Seal"/> seals, and what the sealed value opens to.</summary>
    public byte[] Plain() => JsonSerializer.SerializeToUtf8Bytes(this, AttributedTextJson.Default.AttributedText);

    /// <summary>A stored row's principal and text. <paramref name="principalColumn"/> holds the principal's blind index when the
    /// principal is sealed with the text; a row stored before holds the principal itself, and its text sealed alone (version 1).</summary>
    public static AttributedText OpenStored(TenantKeys keys, int typeCode, string binding, string principalColumn, byte[] sealedText)
    {
        if (VersionOf(principalColumn) == 1)
        {
            return new AttributedText(principalColumn, Encoding.UTF8.GetString(RecordCipher.Open(keys, typeCode, binding, 1, sealedText)));
        }
        return JsonSerializer.Deserialize(RecordCipher.Open(keys, typeCode, binding, Version, sealedText), AttributedTextJson.Default.AttributedText)
            ?? throw new JsonException("An attributed text sealed as null.");
    }

    /// <summary>The record version a stored row's text was sealed with: <see cref="Version"/> when its principal column holds a
    /// blind index, 1 (the text alone) before.</summary>
    public static int VersionOf(string principalColumn) =>
        principalColumn.StartsWith(Audit.AuditChain.PrincipalReferencePrefix, StringComparison.Ordinal) ? Version : 1;

    /// <summary>The principal a row is listed under whose sealed text does not open.</summary>
    public const string AlteredPrincipal = "(altered)";

    /// <summary>As <see cref="OpenStored"/>, but a sealed text altered in the database (or moved to another row) is read as
    /// <see cref="AlteredPrincipal"/> and a text saying so: one damaged row must not take a whole list down with it (an
    /// intruder would hide every alert, or every export awaiting approval, from the officer by damaging one).</summary>
    public static AttributedText OpenStoredOrAltered(TenantKeys keys, int typeCode, string binding, string principalColumn, byte[] sealedText, string what)
    {
        try
        {
            return OpenStored(keys, typeCode, binding, principalColumn, sealedText);
        }
        catch (Exception e) when (e is RecordIntegrityException or JsonException or DecoderFallbackException)
        {
            return new AttributedText(AlteredPrincipal, $"(cannot be opened: the stored {what} was altered in the database)");
        }
    }
}

[JsonSerializable(typeof(AttributedText))]
internal sealed partial class AttributedTextJson : JsonSerializerContext;
