namespace Vauban.Records.Synthetic;

/// <summary>
/// One generated FHIR R4 resource: complete UTF-8 JSON with "resourceType" and "id", without "meta"
/// (the server stamps versionId and lastUpdated when it stores the resource).
/// </summary>
public sealed record SyntheticResource(string ResourceType, string Id, byte[] Json);
