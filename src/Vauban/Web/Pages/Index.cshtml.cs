using Vauban.Access;

namespace Vauban.Web.Pages;

[RequireSession(SessionStage.Full)]
public sealed class HomeModel : StaffPage
{
    public void OnGet() { }
}
