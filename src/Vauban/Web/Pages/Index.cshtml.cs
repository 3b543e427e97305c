using Vauban.Access;

namespace Vauban.Web.Pages;

[RequireSession(SessionStage.Full)]
public sealed class HomeModel : StaffPage
{
    /// <summary>The account's practitioner as "NAME Given (Practitioner/id)", or the reference alone when it cannot be read.</summary>
    public string? Practitioner { get; private set; }

    /// <summary>The account's service as "name (Organization/id)", or the reference alone when it cannot be read.</summary>
    public string? Service { get; private set; }

    /// <summary>The directory records the account names are read through the door (audited, like any read), so that the page
    /// names the person and the service rather than showing their ids.</summary>
    public async Task OnGetAsync()
    {
        if (Person?.User is not { } user || HttpContext.PersonAccess() is not { } access) return;
        if (user.Practitioner is { } practitioner)
        {
            Practitioner = await ServiceLabels.LabelAsync(Store, access, "Practitioner", practitioner, PatientChart.HumanName, HttpContext.RequestAborted);
        }
        if (user.Service is { } service)
        {
            Service = (await ServiceLabels.ReadAsync(Store, access, [service], HttpContext.RequestAborted))[service];
        }
    }
}
