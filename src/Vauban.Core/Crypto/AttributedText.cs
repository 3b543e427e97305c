// A text sealed together with the principal it is from or about, for rows that must name a principal without holding the
// name in clear: the row's principal column holds the audit chain's blind index of the principal (AuditChain.PrincipalReference,
// for matching), and the principal itself is read back only by opening the sealed text. A principal at the command line is
// "cli:<operating-system user>", which may be a person's name.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vauban.Crypto;

internal sealed record AttributedText(string Principal, string Text)
{
    /// <summary>The record version these are sealed with; version 1 of the same type code held the text alone.</summary>
    public const int Version = 2;

    public static bool IsReference(string column) => column.StartsWith("principal-ix:", StringComparison.Ordinal);

    public byte[] Seal(TenantKeys keys, int typeCode, string binding) =>
        RecordCipher.Seal(keys, typeCode, binding, Version, JsonSerializer.SerializeToUtf8Bytes(this, AttributedTextJson.Default.AttributedText), compress: false);

    public static AttributedText Open(TenantKeys keys, int typeCode, string binding, byte[] sealedText) =>
        JsonSerializer.Deserialize(RecordCipher.Open(keys, typeCode, binding, Version, sealedText), AttributedTextJson.Default.AttributedText)
        ?? throw new JsonException("An attributed text sealed as null.");
}

[JsonSerializable(typeof(AttributedText))]
internal sealed partial class AttributedTextJson : JsonSerializerContext;
