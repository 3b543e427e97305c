namespace Vauban.Fhir;

// Identifier.system values for French national identifiers, as used by the ANS (CI-SIS) and the
// FR Core implementation guide. Checked against FR Core 2.x and the ANS INS referential.
public static class KnownIdentifierSystems
{
    /// <summary>INS-NIR: the national health identifier when it is the NIR (autorité d'affectation INS-NIR).</summary>
    public const string InsNir = "urn:oid:1.2.250.1.213.1.4.8";

    /// <summary>INS-NIA: the temporary registration number used when no NIR is assigned yet.</summary>
    public const string InsNia = "urn:oid:1.2.250.1.213.1.4.9";

    /// <summary>INS-NIR of fictitious test patients (ANS test environment).</summary>
    public const string InsNirTest = "urn:oid:1.2.250.1.213.1.4.10";

    /// <summary>INS-NIR of fictitious demonstration patients (ANS demo environment).</summary>
    public const string InsNirDemo = "urn:oid:1.2.250.1.213.1.4.11";

    /// <summary>
    /// IdNatPs, the national identifier of a health professional. Its value is the RPPS number prefixed
    /// with "8" (12 characters), or the ADELI number prefixed with "0".
    /// </summary>
    public const string IdNatPs = "urn:oid:1.2.250.1.71.4.2.1";

    /// <summary>
    /// IdNatStruct, the national identifier of a structure. For an establishment its value is the
    /// FINESS number prefixed with "1" (10 characters).
    /// </summary>
    public const string IdNatStruct = "urn:oid:1.2.250.1.71.4.2.2";

    /// <summary>The bare 11-digit RPPS number (FR Core practitioner slice "rpps").</summary>
    public const string Rpps = "https://rpps.esante.gouv.fr";

    /// <summary>The bare 9-character FINESS number of a legal (EJ) or geographical (EG) entity.</summary>
    public const string Finess = "http://finess.sante.gouv.fr";
}
