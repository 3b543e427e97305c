// The texts a breach calls for, in French and English: the notification to the regulator (GDPR art. 33(3), CNIL: nature of
// the breach with the categories and approximate numbers of data subjects and records, the DPO's name and contact, likely
// consequences, measures taken or proposed; due within 72 hours of detection) and each patient's letter (art. 34(2): the same in
// plain language, about their own data). Markdown, for the DPO to review, sign and send. Counts and dates only come from the
// scope; a patient's name and address appear in that patient's letter alone.
using System.Globalization;
using System.Text;
using Vauban.Audit;

namespace Vauban.Breach;

public enum BreachLanguage { French, English }

/// <summary>What the texts say beside the scope: the establishment, its DPO (blanks when not given), when the breach was detected,
/// when the texts were written, and the principal's state now.</summary>
public sealed record BreachFacts(string Establishment, string? DpoName, string? DpoEmail, DateTimeOffset DetectedAt, DateTimeOffset WrittenAt,
    BreachContainment Containment)
{
    /// <summary>GDPR art. 33(1): the regulator is notified within 72 hours of becoming aware of the breach.</summary>
    public DateTimeOffset Deadline => DetectedAt.AddHours(72);
}

public static class BreachDocuments
{
    private const string Blank = "______________________";

    public static string FileSuffix(BreachLanguage language) => language == BreachLanguage.French ? "fr" : "en";

    /// <summary>The notification to the supervisory authority (CNIL), GDPR art. 33(3).</summary>
    public static string Notification(BreachScope scope, BreachFacts facts, BreachLanguage language)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(facts);
        var fr = language == BreachLanguage.French;
        var text = new StringBuilder();
        Unverified(text, scope, fr);
        var subjects = scope.DataSubjects.Count();
        var canaries = scope.Patients.Count(p => p.Canary);
        text.AppendLine(fr ? "# Notification d'une violation de données personnelles (RGPD, article 33)" : "# Notification of a personal data breach (GDPR, article 33)")
            .AppendLine()
            .AppendLine(fr ? $"Autorité de contrôle : Commission nationale de l'informatique et des libertés (CNIL)" : "Supervisory authority: Commission nationale de l'informatique et des libertés (CNIL)")
            .AppendLine(fr ? $"Responsable du traitement : {facts.Establishment}" : $"Controller: {facts.Establishment}")
            .AppendLine(fr ? $"Violation constatée le : {When(facts.DetectedAt, fr)}" : $"Breach detected: {When(facts.DetectedAt, fr)}")
            .AppendLine(fr ? $"Notification due au plus tard le : {When(facts.Deadline, fr)} (72 heures après la constatation)" : $"Notification due by: {When(facts.Deadline, fr)} (72 hours after detection)")
            .AppendLine(fr ? $"Document établi le : {When(facts.WrittenAt, fr)}" : $"Document written: {When(facts.WrittenAt, fr)}");
        if (facts.WrittenAt > facts.Deadline)
        {
            text.AppendLine().AppendLine(fr
                ? "**Le délai de 72 heures est dépassé : l'article 33(1) exige d'accompagner la notification des motifs du retard :** " + Blank
                : "**The 72-hour deadline has passed: article 33(1) requires the reasons for the delay to accompany this notification:** " + Blank);
        }

        text.AppendLine().AppendLine(fr ? "## 1. Nature de la violation" : "## 1. Nature of the breach").AppendLine();
        text.AppendLine(fr
            ? $"Atteinte à la confidentialité. {Who(scope, fr)} a été utilisé pour consulter des dossiers patients hors de tout besoin de soins. Période examinée : {Window(scope, fr)}. "
              + $"Le périmètre ci-dessous est calculé à partir du journal d'audit de l'établissement (chaîne de hachage signée), vérifié de bout en bout avant le calcul."
            : $"Loss of confidentiality. {Who(scope, fr)} was used to read patient records outside any care need. Period examined: {Window(scope, fr)}. "
              + "The scope below is computed from the establishment's audit log (a signed hash chain), verified end to end before the computation.");
        text.AppendLine()
            .AppendLine(fr ? $"- Personnes concernées : **{subjects}** {Counted.Noun(subjects, fr, "patient", "patients")}" : $"- Data subjects concerned: **{subjects}** {Counted.Noun(subjects, fr, "patient", "patients")}")
            .AppendLine(fr ? $"- Enregistrements concernés : **{scope.Records}** {Counted.Noun(scope.Records, fr, "enregistrement", "enregistrements")} du dossier patient, en {Counted.Fr(scope.Accesses, "accès journalisé", "accès journalisés")}"
                : $"- Records concerned: **{scope.Records}** {Counted.Noun(scope.Records, fr, "patient-record entry", "patient-record entries")}, in {Counted.En(scope.Accesses, "audited access", "audited accesses")}")
            .AppendLine(fr ? $"- Première et dernière consultation : {FirstLast(scope, fr)}" : $"- First and last access: {FirstLast(scope, fr)}")
            .AppendLine(fr ? $"- Tentatives refusées (politique d'accès, garde, échec) : {scope.RefusedAccesses}, dont {Counted.Fr(scope.RefusedPatientsNotInScope, "patient", "patients")} sans aucune donnée divulguée (non {(scope.RefusedPatientsNotInScope > 1 ? "comptés" : "compté")} ci-dessus)"
                : $"- Refused attempts (access policy, guard, failure): {scope.RefusedAccesses}, on {Counted.En(scope.RefusedPatientsNotInScope, "patient", "patients")} of whom no data left (not counted above)");
        if (canaries + scope.RefusedCanaries.Count > 0)
        {
            text.AppendLine(fr
                ? $"- Patients leurres (fictifs, qu'aucun soin n'ouvre) atteints : {canaries}, refusés : {scope.RefusedCanaries.Count} — preuve d'une lecture en masse ; ils ne sont pas comptés parmi les personnes concernées"
                : $"- Canary patients (synthetic, opened by no care workflow) reached: {canaries}, refused: {scope.RefusedCanaries.Count} — evidence of bulk reading; not counted among the data subjects");
        }
        text.AppendLine().AppendLine(fr ? "Catégories de données concernées :" : "Categories of data concerned:").AppendLine();
        foreach (var category in scope.Categories)
        {
            var count = scope.DataSubjects.Count(p => p.Categories.Contains(category));
            text.AppendLine($"- {Describe(category, fr)} ({(fr ? Counted.Fr(count, "patient", "patients") : Counted.En(count, "patient", "patients"))})");
        }
        if (scope.Categories.Count == 0) text.AppendLine(fr ? "- aucune donnée patient n'a quitté le système" : "- no patient data left the system");
        text.AppendLine().AppendLine(fr
            ? "Les données de santé sont des catégories particulières de données (article 9). Le détail par patient est dans `scope.json`."
            : "Health data are special categories of data (article 9). The detail per patient is in `scope.json`.");

        text.AppendLine().AppendLine(fr ? "## 2. Délégué à la protection des données" : "## 2. Data protection officer").AppendLine();
        Dpo(text, facts, fr);

        text.AppendLine().AppendLine(fr ? "## 3. Conséquences probables" : "## 3. Likely consequences").AppendLine();
        text.AppendLine(fr
            ? "Divulgation de données de santé et d'identité à un tiers non autorisé : atteinte à la vie privée, risque d'hameçonnage ciblé et d'escroquerie "
              + "(usurpation de l'établissement ou de l'assurance maladie), d'usurpation d'identité (numéro de sécurité sociale), de chantage ou de discrimination "
              + "fondée sur l'état de santé. Risque élevé pour les droits et libertés des personnes : elles sont informées individuellement (article 34)."
            : "Disclosure of health and identity data to an unauthorised party: loss of privacy, risk of targeted phishing and fraud (impersonating the "
              + "establishment or the health insurer), identity theft (social-security number), blackmail or discrimination based on health. High risk to the "
              + "rights and freedoms of the persons concerned: each is informed individually (article 34).");

        text.AppendLine().AppendLine(fr ? "## 4. Mesures prises ou envisagées" : "## 4. Measures taken or proposed").AppendLine();
        foreach (var measure in Measures(scope, facts, fr)) text.AppendLine("- " + measure);
        return text.ToString();
    }

    /// <summary>One patient's letter, GDPR art. 34(2), in plain language about their own data.</summary>
    public static string Letter(BreachScope scope, BreachPatient patient, BreachAddressee addressee, BreachFacts facts, BreachLanguage language)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(patient);
        ArgumentNullException.ThrowIfNull(addressee);
        ArgumentNullException.ThrowIfNull(facts);
        var fr = language == BreachLanguage.French;
        var text = new StringBuilder();
        Unverified(text, scope, fr);
        text.AppendLine(facts.Establishment).AppendLine();
        text.AppendLine(addressee.Name.Length > 0 ? addressee.Name : Blank);
        foreach (var line in addressee.Address) text.AppendLine(line);
        if (addressee.Address.Count == 0) text.AppendLine(fr ? "(adresse postale absente du dossier : " + Blank + ")" : "(no postal address on record: " + Blank + ")");
        text.AppendLine().AppendLine(fr ? $"Le {Day(facts.WrittenAt, fr)}" : Day(facts.WrittenAt, fr)).AppendLine();
        text.AppendLine(fr ? "**Objet : une atteinte à la confidentialité de vos données de santé**" : "**Subject: a breach of the confidentiality of your health data**").AppendLine();
        // French letters open without the name ("Madame, Monsieur,"), as French correspondence does; English ones with it.
        text.AppendLine(fr ? "Madame, Monsieur," : addressee.Name.Length > 0 ? $"Dear {addressee.Name}," : "Dear patient,").AppendLine();
        text.AppendLine(fr
            ? $"Nous devons vous informer qu'un accès non autorisé a touché votre dossier chez {facts.Establishment}. {Who(scope, fr, named: false)} a été utilisé par une personne "
              + $"qui n'en avait pas le droit, pour consulter des dossiers de patients. Notre journal des accès montre que des données de votre dossier ont été consultées "
              + $"entre le {When(patient.FirstAccess, fr)} et le {When(patient.LastAccess, fr)} ({Counted.Fr(patient.Accesses, "accès", "accès")})."
            : $"We must tell you that an unauthorised access reached your record at {facts.Establishment}. {Who(scope, fr, named: false)} was used by someone who had no right to it, "
              + $"to read patients' records. Our access log shows that data from your record were read between {When(patient.FirstAccess, fr)} and "
              + $"{When(patient.LastAccess, fr)} ({Counted.En(patient.Accesses, "access", "accesses")}).");
        text.AppendLine().AppendLine(fr ? "**Les données de votre dossier qui ont été atteintes :**" : "**The data from your record that were reached:**").AppendLine();
        foreach (var category in patient.Categories) text.AppendLine("- " + Describe(category, fr));
        if (patient.Actions.Any(a => a is AuditAction.Create or AuditAction.Update or AuditAction.Delete))
        {
            text.AppendLine().AppendLine(fr
                ? "Votre dossier a aussi été modifié par ce même accès : nos équipes vérifient chaque modification et vous contacteront si une correction est nécessaire."
                : "Your record was also changed through the same access: our staff are checking each change and will contact you if anything must be corrected.");
        }
        text.AppendLine().AppendLine(fr ? "**Ce qui peut en résulter :**" : "**What this may lead to:**").AppendLine();
        text.AppendLine(fr
            ? "Ces informations pourraient être utilisées pour vous tromper : messages, appels ou courriers se présentant comme venant de l'hôpital, de votre médecin "
              + "ou de l'Assurance Maladie, qui citent des détails exacts de votre dossier pour vous demander de l'argent, vos codes ou vos coordonnées bancaires."
            : "This information could be used to deceive you: messages, calls or letters claiming to come from the hospital, your doctor or the health insurer "
              + "(Assurance Maladie), quoting true details of your record to ask for money, your passwords or your bank details.");
        text.AppendLine().AppendLine(fr ? "**Ce que nous avons fait :**" : "**What we have done:**").AppendLine();
        // What was done, not the operator's reminder of what is left to do (which the regulator's notification keeps).
        foreach (var measure in Measures(scope, facts, fr, forPatient: true)) text.AppendLine("- " + measure);
        text.AppendLine().AppendLine(fr ? "**Ce que vous pouvez faire :**" : "**What you can do:**").AppendLine();
        text.AppendLine(fr
                ? "- Ne communiquez jamais vos codes, mots de passe ou coordonnées bancaires à la suite d'un message ou d'un appel, même s'il cite votre dossier : nous ne vous les demanderons jamais."
                : "- Never give your codes, passwords or bank details in answer to a message or a call, even one that quotes your record: we will never ask for them.")
            .AppendLine(fr
                ? "- En cas de doute, rappelez l'hôpital ou l'Assurance Maladie au numéro que vous connaissez, pas à celui donné dans le message."
                : "- When in doubt, call the hospital or the Assurance Maladie back on the number you know, not the one given in the message.")
            .AppendLine(fr
                ? "- Surveillez vos relevés de remboursement (compte ameli) et signalez toute opération que vous ne reconnaissez pas."
                : "- Check your health-insurance statements (ameli account) and report any claim you do not recognise.")
            .AppendLine(fr
                ? "- Vous pouvez demander à notre délégué à la protection des données la liste des accès à votre dossier, et déposer une plainte auprès de la CNIL (www.cnil.fr)."
                : "- You may ask our data protection officer for the list of accesses to your record, and lodge a complaint with the CNIL (www.cnil.fr).");
        text.AppendLine().AppendLine(fr ? "**Pour toute question, notre délégué à la protection des données :**" : "**For any question, our data protection officer:**").AppendLine();
        Dpo(text, facts, fr);
        text.AppendLine().AppendLine(fr
            ? "Nous vous prions de nous excuser pour cette atteinte et vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées."
            : "We apologise for this breach. Yours sincerely,");
        text.AppendLine().AppendLine(facts.Establishment);
        return text.ToString();
    }

    /// <summary>A scope computed from a log that did not verify says so first, in every text.</summary>
    private static void Unverified(StringBuilder text, BreachScope scope, bool fr)
    {
        if (scope.Log.Problem is not { } problem) return;
        text.AppendLine(fr
            ? $"> **ATTENTION — JOURNAL D'AUDIT NON VÉRIFIÉ.** Ce document a été produit avec `--unverified` alors que {problem}. Le périmètre peut être incomplet ou faux : ne l'envoyez pas sans l'avoir établi autrement."
            : $"> **WARNING — AUDIT LOG NOT VERIFIED.** This document was produced with `--unverified` although {problem}. The scope may be incomplete or wrong: do not send it before establishing it otherwise.");
        text.AppendLine();
    }

    private static void Dpo(StringBuilder text, BreachFacts facts, bool fr) =>
        text.AppendLine(fr ? $"- Nom : {facts.DpoName ?? Blank}" : $"- Name: {facts.DpoName ?? Blank}")
            .AppendLine(fr ? $"- Courriel : {facts.DpoEmail ?? Blank}" : $"- E-mail: {facts.DpoEmail ?? Blank}");

    private static IEnumerable<string> Measures(BreachScope scope, BreachFacts facts, bool fr, bool forPatient = false)
    {
        var state = facts.Containment;
        if (state.GuardLevel is { } level)
        {
            yield return fr ? $"l'accès en cause est retenu par la garde de Vauban (niveau « {level} ») depuis le {When(state.GuardContainedAt!.Value, fr)}"
                : $"the access concerned is held by Vauban's guard (level \"{level}\") since {When(state.GuardContainedAt!.Value, fr)}";
        }
        if (state.AccountLocked) yield return fr ? "le compte en cause est verrouillé" : "the account concerned is locked";
        if (state.ClientRevoked) yield return fr ? "le client d'API en cause est révoqué : il ne peut plus obtenir de jeton" : "the API client concerned is revoked: it can no longer obtain a token";
        if (state.GuardLevel is null && !state.AccountLocked && !state.ClientRevoked && !forPatient)
        {
            yield return fr
                ? "**à faire : l'accès en cause n'est encore ni retenu, ni verrouillé, ni révoqué** (`vauban users lock` ou `vauban clients revoke`) : " + Blank
                : "**to do: the access concerned is not yet held, locked or revoked** (`vauban users lock` or `vauban clients revoke`): " + Blank;
        }
        yield return fr ? "le périmètre a été établi à partir du journal d'audit infalsifiable de l'établissement, patient par patient"
            : "the scope was established from the establishment's tamper-evident audit log, patient by patient";
        yield return fr ? "chaque patient concerné est informé individuellement par courrier" : "each patient concerned is informed individually by letter";
        yield return fr ? "autres mesures (renouvellement des secrets, plainte, analyse de l'origine) : " + Blank
            : "further measures (secrets renewed, complaint filed, root-cause analysis): " + Blank;
    }

    /// <summary>Who the access was: with its id for the regulator (<paramref name="named"/>), without for a patient, to whom an internal
    /// account or client id means nothing.</summary>
    private static string Who(BreachScope scope, bool fr, bool named = true) => scope.PrincipalKind == "person"
        ? (fr ? "Le compte d'un membre du personnel" : "A staff member's account") + (named ? $" (`{scope.Principal}`)" : "")
        : named
            ? (fr ? $"L'accès d'un logiciel connecté à notre dossier patient (client d'API `{scope.Principal}`)"
                : $"The access of a software system connected to our patient records (API client `{scope.Principal}`)")
            : (fr ? "L'accès d'un logiciel connecté à notre dossier patient" : "The access of a software system connected to our patient records");

    private static string Window(BreachScope scope, bool fr) => (scope.From, scope.To) switch
    {
        (null, null) => fr ? "tout l'historique du journal" : "the whole history of the log",
        ({ } from, null) => fr ? $"depuis le {When(from, fr)}" : $"from {When(from, fr)}",
        (null, { } to) => fr ? $"jusqu'au {When(to, fr)} (exclu)" : $"until {When(to, fr)} (excluded)",
        ({ } from, { } to) => fr ? $"du {When(from, fr)} au {When(to, fr)} (exclu)" : $"from {When(from, fr)} to {When(to, fr)} (excluded)",
    };

    // The data subjects' accesses: a canary's are evidence of the reading, and may lie outside it (a probe before it began).
    private static string FirstLast(BreachScope scope, bool fr) => !scope.DataSubjects.Any()
        ? (fr ? "aucune" : "none")
        : $"{When(scope.DataSubjects.Min(p => p.FirstAccess), fr)} — {When(scope.DataSubjects.Max(p => p.LastAccess), fr)}";

    public static string Describe(BreachCategory category, bool french) => (category, french) switch
    {
        (BreachCategory.Identity, true) => "identité et coordonnées : nom, date de naissance, sexe, adresse, téléphone, courriel, numéro de sécurité sociale (NIR/INS), médecin traitant",
        (BreachCategory.Identity, false) => "identity and contact details: name, date of birth, sex, address, phone, e-mail, social-security number (NIR/INS), general practitioner",
        (BreachCategory.CareEpisodes, true) => "séjours, consultations et rendez-vous",
        (BreachCategory.CareEpisodes, false) => "hospital stays, consultations and appointments",
        (BreachCategory.Prescriptions, true) => "prescriptions de médicaments",
        (BreachCategory.Prescriptions, false) => "medication prescriptions",
        (BreachCategory.LabResults, true) => "résultats d'analyses et d'examens",
        (BreachCategory.LabResults, false) => "laboratory and test results",
        (BreachCategory.ClinicalDocuments, true) => "documents médicaux (comptes rendus, courriers)",
        (BreachCategory.ClinicalDocuments, false) => "clinical documents (reports, letters)",
        (BreachCategory.InsuranceAndBilling, true) => "assurance maladie, utilisation de la carte Vitale et facturation",
        (BreachCategory.InsuranceAndBilling, false) => "health insurance, health-card (carte Vitale) use and billing",
        (BreachCategory.CareTeam, true) => "équipe de soins",
        (BreachCategory.CareTeam, false) => "care team",
        (BreachCategory.AccessHistory, true) => "historique des accès à votre dossier : qui l'a consulté, quand, depuis quel poste",
        _ => "the access history of your record: who opened it, when, and from where",
    };

    /// <summary>Times as the clocks in France showed them (a patient read "18:41 UTC" for an access at 19:41 on her clock), named as such.</summary>
    private static string When(DateTimeOffset at, bool fr) =>
        ParisTime.Of(at).ToString(fr ? "dd/MM/yyyy 'à' HH:mm" : "yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)
        + (fr ? " (heure de Paris)" : " (Paris time)");

    private static string Day(DateTimeOffset at, bool fr) => ParisTime.Of(at).ToString(fr ? "dd/MM/yyyy" : "yyyy-MM-dd", CultureInfo.InvariantCulture);
}
