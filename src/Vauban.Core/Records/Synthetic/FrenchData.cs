using System.Text;
using System.Text.Json;
using Bogus.Bson;

namespace Vauban.Records.Synthetic;

// The French reference data the generator draws from, loaded once per process. Names and streets
// come from Bogus' "fr" locale, pulled into arrays so that a draw is an index, not a Bogus call
// (Bogus' per-call locale lookups and string formatting would cost more than the whole patient).
// Cities, drugs, lab tests and specialties are curated here because Bogus has no consistent
// city/postal code/INSEE code triple and no medical vocabulary.
internal sealed class FrenchData
{
    private static readonly Lazy<FrenchData> Loaded = new(() => new FrenchData());

    private FrenchData()
    {
        var fr = Bogus.Database.GetLocale("fr");
        MaleFirstNames = Names(Strings(fr, "name", "male_first_name"));
        FemaleFirstNames = Names(Strings(fr, "name", "female_first_name"));
        LastNames = Names(Strings(fr, "name", "last_name"));
        var prefixes = Strings(fr, "address", "street_prefix");
        var suffixes = Strings(fr, "address", "street_suffix");
        Streets = [.. prefixes.SelectMany(p => suffixes.Select(s => $"{p.ToLowerInvariant()} {s}"))];
        EmailDomains = [.. Strings(fr, "internet", "free_email"), "orange.fr", "free.fr", "laposte.net", "sfr.fr"];
    }

    public static FrenchData Instance => Loaded.Value;

    public PersonName[] MaleFirstNames { get; }

    public PersonName[] FemaleFirstNames { get; }

    public PersonName[] LastNames { get; }

    /// <summary>"rue de la Harpe", "boulevard Bonaparte": every Bogus prefix with every suffix.</summary>
    public string[] Streets { get; }

    public string[] EmailDomains { get; }

    private static string[] Strings(BObject locale, string category, string key)
    {
        var array = (BArray)((BObject)locale[category])[key];
        var values = new string[array.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = array[i].StringValue;
        }

        return values;
    }

    private static PersonName[] Names(string[] names) => [.. names.Distinct(StringComparer.Ordinal).Select(n => new PersonName(n, Slug(n)))];

    // "Hélène" -> "helene", "Jean-Baptiste" -> "jean-baptiste": the local part of an e-mail address.
    // Accents folded by the search index's table: string.Normalize does nothing to non-ASCII text in this process (invariant
    // globalization), and "Hélène" became "hlne".
    internal static string Slug(string name) =>
        string.Join('-', name.Split('-').Select(part => new string([.. Search.TextNormalizer.Fold(part).Where(char.IsAsciiLetterOrDigit)])));

    // A city of residence and birth. For Paris, Marseille and Lyon, Districts > 1: the postal code and
    // the INSEE code of the arrondissement are PostalCode + k and Insee + k (k = 0..Districts-1).
    // PhoneZone is the first digit of landline numbers in the region (1 Île-de-France ... 5 South-West,
    // 0 overseas where numbers start with 05 9x, kept simple here as 5).
    internal sealed record City(string Name, int PostalCode, string Insee, int Districts, char PhoneZone, string Insurer)
    {
        public string Department => Insee.StartsWith("97", StringComparison.Ordinal) ? Insee[..3] : Insee[..2];

        public bool IsOverseas => Insee.StartsWith("97", StringComparison.Ordinal);

        public bool IsCorsica => Insee[1] is 'A' or 'B';
    }

    public static readonly City[] Cities =
    [
        new("Paris", 75001, "75101", 20, '1', "CPAM de Paris"),
        new("Marseille", 13001, "13201", 16, '4', "CPAM des Bouches-du-Rhône"),
        new("Lyon", 69001, "69381", 9, '4', "CPAM du Rhône"),
        new("Toulouse", 31000, "31555", 1, '5', "CPAM de la Haute-Garonne"),
        new("Nice", 6000, "06088", 1, '4', "CPAM des Alpes-Maritimes"),
        new("Nantes", 44000, "44109", 1, '2', "CPAM de Loire-Atlantique"),
        new("Strasbourg", 67000, "67482", 1, '3', "CPAM du Bas-Rhin"),
        new("Montpellier", 34000, "34172", 1, '4', "CPAM de l'Hérault"),
        new("Bordeaux", 33000, "33063", 1, '5', "CPAM de la Gironde"),
        new("Lille", 59000, "59350", 1, '3', "CPAM de Lille-Douai"),
        new("Rennes", 35000, "35238", 1, '2', "CPAM d'Ille-et-Vilaine"),
        new("Reims", 51100, "51454", 1, '3', "CPAM de la Marne"),
        new("Le Havre", 76600, "76351", 1, '2', "CPAM du Havre"),
        new("Saint-Étienne", 42000, "42218", 1, '4', "CPAM de la Loire"),
        new("Toulon", 83000, "83137", 1, '4', "CPAM du Var"),
        new("Grenoble", 38000, "38185", 1, '4', "CPAM de l'Isère"),
        new("Dijon", 21000, "21231", 1, '3', "CPAM de la Côte-d'Or"),
        new("Angers", 49000, "49007", 1, '2', "CPAM de Maine-et-Loire"),
        new("Nîmes", 30000, "30189", 1, '4', "CPAM du Gard"),
        new("Villeurbanne", 69100, "69266", 1, '4', "CPAM du Rhône"),
        new("Clermont-Ferrand", 63000, "63113", 1, '4', "CPAM du Puy-de-Dôme"),
        new("Le Mans", 72000, "72181", 1, '2', "CPAM de la Sarthe"),
        new("Aix-en-Provence", 13100, "13001", 1, '4', "CPAM des Bouches-du-Rhône"),
        new("Brest", 29200, "29019", 1, '2', "CPAM du Finistère"),
        new("Tours", 37000, "37261", 1, '2', "CPAM d'Indre-et-Loire"),
        new("Amiens", 80000, "80021", 1, '3', "CPAM de la Somme"),
        new("Limoges", 87000, "87085", 1, '5', "CPAM de la Haute-Vienne"),
        new("Annecy", 74000, "74010", 1, '4', "CPAM de la Haute-Savoie"),
        new("Perpignan", 66000, "66136", 1, '4', "CPAM des Pyrénées-Orientales"),
        new("Metz", 57000, "57463", 1, '3', "CPAM de la Moselle"),
        new("Besançon", 25000, "25056", 1, '3', "CPAM du Doubs"),
        new("Orléans", 45000, "45234", 1, '2', "CPAM du Loiret"),
        new("Rouen", 76000, "76540", 1, '2', "CPAM de Rouen-Elbeuf-Dieppe"),
        new("Caen", 14000, "14118", 1, '2', "CPAM du Calvados"),
        new("Nancy", 54000, "54395", 1, '3', "CPAM de Meurthe-et-Moselle"),
        new("Mulhouse", 68100, "68224", 1, '3', "CPAM du Haut-Rhin"),
        new("Avignon", 84000, "84007", 1, '4', "CPAM de Vaucluse"),
        new("Poitiers", 86000, "86194", 1, '5', "CPAM de la Vienne"),
        new("Pau", 64000, "64445", 1, '5', "CPAM de Pau-Pyrénées"),
        new("La Rochelle", 17000, "17300", 1, '5', "CPAM de la Charente-Maritime"),
        new("Versailles", 78000, "78646", 1, '1', "CPAM des Yvelines"),
        new("Boulogne-Billancourt", 92100, "92012", 1, '1', "CPAM des Hauts-de-Seine"),
        new("Nanterre", 92000, "92050", 1, '1', "CPAM des Hauts-de-Seine"),
        new("Saint-Denis", 93200, "93066", 1, '1', "CPAM de la Seine-Saint-Denis"),
        new("Montreuil", 93100, "93048", 1, '1', "CPAM de la Seine-Saint-Denis"),
        new("Créteil", 94000, "94028", 1, '1', "CPAM du Val-de-Marne"),
        new("Argenteuil", 95100, "95018", 1, '1', "CPAM du Val-d'Oise"),
        new("Dunkerque", 59140, "59183", 1, '3', "CPAM des Flandres"),
        new("Calais", 62100, "62193", 1, '3', "CPAM de la Côte d'Opale"),
        new("Ajaccio", 20000, "2A004", 1, '4', "CPAM de la Corse-du-Sud"),
        new("Bastia", 20200, "2B033", 1, '4', "CPAM de la Haute-Corse"),
        new("Pointe-à-Pitre", 97110, "97120", 1, '5', "CGSS de la Guadeloupe"),
        new("Fort-de-France", 97200, "97209", 1, '5', "CGSS de la Martinique"),
        new("Cayenne", 97300, "97302", 1, '5', "CGSS de la Guyane"),
        new("Saint-Denis", 97400, "97411", 1, '5', "CGSS de La Réunion"),
        new("Mamoudzou", 97600, "97611", 1, '5', "CSSM de Mayotte"),
    ];

    /// <summary>Birth abroad: the INSEE country code used in the NIR (99 + 3 digits) and the ISO code.</summary>
    public static readonly (string Insee, string Iso)[] BirthCountries =
    [
        ("99350", "MA"), ("99352", "DZ"), ("99351", "TN"), ("99139", "PT"), ("99127", "IT"),
        ("99134", "ES"), ("99109", "DE"), ("99131", "BE"),
    ];

    public static readonly string[] Mutuelles =
    [
        "MGEN", "Harmonie Mutuelle", "Malakoff Humanis", "AG2R La Mondiale", "Mutuelle Générale",
    ];

    // PractitionerRole.specialty: SNOMED CT practice-setting codes (FHIR R4 example binding), French labels.
    public static readonly (string Code, string Display)[] Specialties =
    [
        ("394814009", "Médecine générale"), ("394579002", "Cardiologie"), ("394582007", "Dermatologie"),
        ("394584008", "Gastro-entérologie"), ("394585009", "Gynécologie-obstétrique"), ("394591006", "Neurologie"),
        ("394537008", "Pédiatrie"), ("394801008", "Chirurgie orthopédique"), ("394589003", "Néphrologie"),
        ("394577000", "Anesthésie"), ("394587001", "Psychiatrie"), ("394609007", "Chirurgie générale"),
        ("394583002", "Endocrinologie"), ("394594003", "Ophtalmologie"), ("394592004", "Oncologie"),
        ("394810000", "Rhumatologie"), ("418112009", "Pneumologie"), ("394612005", "Urologie"),
    ];

    public const int GeneralPracticeSpecialty = 0;

    // Drugs commonly prescribed in France: name as written on a prescription, ATC code, dosage text.
    public static readonly (string Name, string Atc, string Dosage)[] Drugs =
    [
        ("DOLIPRANE 1000 mg, comprimé", "N02BE01", "1 comprimé jusqu'à 3 fois par jour si douleur, espacer de 6 heures"),
        ("KARDEGIC 75 mg, poudre pour solution buvable", "B01AC06", "1 sachet par jour au cours du déjeuner"),
        ("LEVOTHYROX 75 microgrammes, comprimé sécable", "H03AA01", "1 comprimé le matin à jeun"),
        ("METFORMINE 850 mg, comprimé pelliculé", "A10BA02", "1 comprimé matin et soir au cours des repas"),
        ("AMOXICILLINE 1 g, comprimé dispersible", "J01CA04", "1 comprimé matin, midi et soir pendant 6 jours"),
        ("AUGMENTIN 1 g/125 mg, poudre pour suspension buvable", "J01CR02", "1 sachet 3 fois par jour pendant 7 jours"),
        ("INEXIUM 20 mg, comprimé gastro-résistant", "A02BC05", "1 comprimé par jour avant le repas pendant 4 semaines"),
        ("MOPRAL 20 mg, gélule gastro-résistante", "A02BC01", "1 gélule le matin"),
        ("TAHOR 20 mg, comprimé pelliculé", "C10AA05", "1 comprimé le soir"),
        ("CRESTOR 10 mg, comprimé pelliculé", "C10AA07", "1 comprimé par jour"),
        ("AMLOR 5 mg, gélule", "C08CA01", "1 gélule par jour"),
        ("COVERSYL 5 mg, comprimé pelliculé sécable", "C09AA04", "1 comprimé le matin avant le petit-déjeuner"),
        ("LASILIX 40 mg, comprimé sécable", "C03CA01", "1 comprimé le matin"),
        ("ELIQUIS 5 mg, comprimé pelliculé", "B01AF02", "1 comprimé matin et soir"),
        ("XARELTO 20 mg, comprimé pelliculé", "B01AF01", "1 comprimé par jour au cours du repas du soir"),
        ("SPASFON 80 mg, comprimé orodispersible", "A03AX12", "2 comprimés en cas de douleur, jusqu'à 3 fois par jour"),
        ("VENTOLINE 100 microgrammes/dose, suspension pour inhalation", "R03AC02", "1 à 2 bouffées en cas de gêne respiratoire"),
        ("SERESTA 10 mg, comprimé", "N05BA04", "1 comprimé le soir au coucher pendant 10 jours"),
        ("DEROXAT 20 mg, comprimé pelliculé sécable", "N06AB05", "1 comprimé le matin au cours du petit-déjeuner"),
        ("IBUPROFENE 400 mg, comprimé pelliculé", "M01AE01", "1 comprimé 3 fois par jour au cours des repas pendant 5 jours"),
        ("TRAMADOL 50 mg, gélule", "N02AX02", "1 gélule toutes les 6 heures si douleur, maximum 8 par jour"),
        ("LOVENOX 4000 UI/0,4 mL, solution injectable", "B01AB05", "1 injection sous-cutanée par jour pendant 10 jours"),
        ("BISOPROLOL 5 mg, comprimé pelliculé sécable", "C07AB07", "1 comprimé le matin"),
        ("RAMIPRIL 5 mg, comprimé sécable", "C09AA05", "1 comprimé par jour"),
    ];

    // Laboratory tests: LOINC code and display, UCUM unit, plausible range of results, reference range.
    internal sealed record LabTest(string Loinc, string Display, string Unit, double Min, double Max, double Low, double High, int Decimals);

    public static readonly LabTest[] LabTests =
    [
        new("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9.5, 17.5, 12, 16, 1),
        new("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3, 14, 4, 10, 1),
        new("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 110, 450, 150, 400, 0),
        new("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "g/L", 0.65, 1.9, 0.7, 1.1, 2),
        new("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 45, 160, 50, 110, 0),
        new("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 130, 148, 136, 145, 0),
        new("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.2, 5.6, 3.5, 5.0, 1),
        new("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "g/L", 1.4, 3.0, 1.5, 2.0, 2),
        new("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.6, 9.5, 4, 6, 1),
        new("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.5, 80, 0, 5, 1),
        new("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.2, 6.5, 0.4, 4.0, 2),
        new("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 8, 90, 7, 56, 0),
    ];

    // ABO/Rh groups as answered to LOINC 882-1, with their French frequencies (per mille).
    public static readonly (string Snomed, string Display, int PerMille)[] BloodGroups =
    [
        ("278147001", "O Rh(D) positive", 360), ("278148006", "O Rh(D) negative", 60),
        ("278149003", "A Rh(D) positive", 370), ("278152006", "A Rh(D) negative", 70),
        ("278150003", "B Rh(D) positive", 80), ("278153001", "B Rh(D) negative", 10),
        ("278151004", "AB Rh(D) positive", 40), ("278154007", "AB Rh(D) negative", 10),
    ];
}

/// <summary>A name and its accent-free lower-case form for e-mail addresses.</summary>
internal sealed record PersonName(string Value, string Slug)
{
    public JsonEncodedText Json { get; } = JsonEncodedText.Encode(Value, SyntheticJson.Encoder);
}
