namespace Vauban.Fhir;

/// <summary>Identifier systems of the French health information system (ANS, FR Core).</summary>
public static class KnownIdentifierSystems
{
    /// <summary>INS-NIR: the national health identifier, for a person's NIR.</summary>
    public const string InsNir = "urn:oid:1.2.250.1.213.1.4.8";
    /// <summary>INS-NIA: provisional identifier attributed by the CNAV.</summary>
    public const string InsNia = "urn:oid:1.2.250.1.213.1.4.9";
    /// <summary>RPPS: the national directory of health professionals.</summary>
    public const string Rpps = "urn:oid:1.2.250.1.71.4.2.1";
    /// <summary>FINESS: the national directory of health and social establishments.</summary>
    public const string Finess = "urn:oid:1.2.250.1.71.4.2.2";
}
