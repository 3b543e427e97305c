using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// Registering a patient, by admissions: a role whose reach is every patient of the establishment (the front desk), so that
/// the identity-vigilance checks see every person already registered — a role that sees only its own patients (a physician)
/// would find none of the others and register them twice, and is sent to admissions. The identity typed, checked by the form's rules
/// (<see cref="PatientRegistration"/>), then two identity-vigilance checks through the records service before anything is
/// written — the patients already registered under the same birth name and birth date are shown, and registering goes on only
/// once the person confirms this is another person; and a NIR already registered is found by the create itself
/// (If-None-Exist, in the same write), which then writes nothing and names that record. The create is the records service's:
/// the same policy, guard and audit as a FHIR client's. Done, it answers by a redirect to the new patient's chart.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class RegisterModel : StaffPage
{
    [BindProperty] public string? Family { get; set; }
    [BindProperty] public string? UsedFamily { get; set; }
    [BindProperty] public string? Given { get; set; }
    [BindProperty] public string? Sex { get; set; }
    [BindProperty] public string? BirthDate { get; set; }
    [BindProperty] public string? Nir { get; set; }
    [BindProperty] public string? Phone { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Line { get; set; }
    [BindProperty] public string? PostalCode { get; set; }
    [BindProperty] public string? City { get; set; }

    /// <summary>The person has seen the patients registered under the same name and birth date and confirms this is another.</summary>
    [BindProperty] public bool AnotherPerson { get; set; }

    /// <summary>The ids of the patients that confirmation was given against (the list shown): it holds only while the same
    /// identity finds the same patients, not for a name or a date changed after ticking it.</summary>
    [BindProperty] public string? Shown { get; set; }

    public bool MayRegister { get; private set; }

    public string? Error { get; private set; }

    /// <summary>The patients already registered under the same birth name and birth date (id, "FAMILY Given", birth date).</summary>
    public IReadOnlyList<PatientIdentity> Namesakes { get; private set; } = [];

    /// <summary>The patient already registered with the NIR typed, when the create found one.</summary>
    public string? RegisteredWithNir { get; private set; }

    public IActionResult OnGet()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        return Show(access, null, null);
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        const string notDone = "Nothing was registered.";
        var form = new RegistrationForm(Family, UsedFamily, Given, Sex, BirthDate, Nir, Phone, Email, Line, PostalCode, City);
        var (registration, problem) = PatientRegistration.Read(form, ParisTime.DateOf(UtcNow));
        if (registration is null) return Show(access, 400, problem);
        // A role without the establishment's reach is refused here, before any search: its checks would be blind (a forged post).
        var mayCreate = Store.Policy.Authorize(access, Interaction.Create, "Patient").Allowed;
        if (mayCreate && !ReachesEveryPatient(access))
        {
            // Refused here, not by the access policy (the API lets her create): still an attempt the security officer sees.
            await Store.Audit.AppendAsync(access, AuditAction.Create, AuditOutcome.MinorFailure, "Patient", [], CancellationToken.None,
                "refused: patients are registered by admissions (a role that reaches every patient), not through this role's page");
            return Show(access, 403, AdmissionsOnly);
        }
        // Identity vigilance: a person already registered under this identity is opened, not registered twice. Searched at every
        // post: a confirmation holds for the patients it was given against. A search the role may not make (a forged post) is left
        // to the create, which the records service refuses and audits.
        var found = await Store.Records.SearchAsync(access, "Patient", registration.NamesakeQuery(), null, lenient: false, HttpContext.RequestAborted);
        if (found.Status == RecordStatus.ReauthenticationRequired) return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
        if (found.Status == RecordStatus.Ok)
        {
            Namesakes = PatientChart.Matched(found.Entries);
            var confirmed = AnotherPerson && (Shown ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal)
                .SetEquals(Namesakes.Select(n => n.Id));
            if (Namesakes.Count > 0 && !confirmed)
            {
                AnotherPerson = false;
                return Show(access, 409, $"{notDone} A patient with this birth name and birth date is already registered: open their record if it is this patient, "
                    + "or confirm below that this is another person.");
            }
        }
        var result = await Store.Records.CreateAsync(access, "Patient", registration.ToFhir(), registration.NirCriteria, HttpContext.RequestAborted);
        switch (result.Status)
        {
            case RecordStatus.Created:
                return Acted($"Registered {string.Join(' ', registration.Family.ToUpperInvariant(), registration.Given[0])}, born {registration.BirthDate:yyyy-MM-dd}.",
                    "/patients/" + Uri.EscapeDataString(result.Id!));
            case RecordStatus.Ok:
                // If-None-Exist matched: the NIR is registered already, and nothing was written.
                RegisteredWithNir = result.Id;
                return Show(access, 409, $"{notDone} A patient is already registered with this NIR: open their record.");
            case RecordStatus.PreconditionFailed:
                return Show(access, 409, $"{notDone} Several patients are registered with this NIR: the security officer or identity vigilance must merge them first.");
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            default:
                var status = RecordStatusCodes.Http(result.Status);
                var refused = mayCreate ? Said(result.Issues) ?? "The records service refused it." : RoleRefused;
                return Show(access, status, ActRefusal(status, notDone, refused, Said(result.Issues)));
        }
    }

    private const string RoleRefused = "Your role does not register patients.";

    private const string AdmissionsOnly = "Patients are registered by admissions (the front desk), whose checks for a person already registered see every "
        + "patient of the establishment; yours see only your own patients. Ask the front desk to register this patient.";

    /// <summary>Whether the person's role may register patients here: create them, and reach every patient of the establishment.</summary>
    public static bool MayRegisterAs(AccessContext access, Access.AccessPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(access);
        ArgumentNullException.ThrowIfNull(policy);
        return policy.Authorize(access, Interaction.Create, "Patient").Allowed && ReachesEveryPatient(access);
    }

    private static bool ReachesEveryPatient(AccessContext access) =>
        access.Principal.Role is { } role && RolePermissions.For(role, "Patient").Reach == Reach.Tenant;

    private PageResult Show(AccessContext access, int? status, string? error)
    {
        MayRegister = MayRegisterAs(access, Store.Policy);
        if (!MayRegister && status is null)
        {
            status = 403;
            error = Store.Policy.Authorize(access, Interaction.Create, "Patient").Allowed ? AdmissionsOnly : RoleRefused;
        }
        if (status is { } code) Response.StatusCode = code;
        Error = error;
        return Page();
    }
}
