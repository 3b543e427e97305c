// What a staff page tells its script about the session (session.js, served as /account/session.js): when it ends if nothing is
// done, from the server's clock and options (never a number written into the script), so that the page can warn before the
// idle time-out ends it and say when it has ended. Times are sent as seconds from now, so a browser's wrong clock does not matter.
using System.Globalization;
using Vauban.Access;

namespace Vauban.Web;

public static class SessionNotice
{
    /// <summary>How long before the end the notice shows: 2 minutes, or half the idle time-out when that is shorter.</summary>
    public static TimeSpan WarnBefore(AccountOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var half = options.IdleTimeout / 2;
        return half < TimeSpan.FromMinutes(2) ? half : TimeSpan.FromMinutes(2);
    }

    /// <summary>The notice's element, for a page of a fully signed-in person; empty otherwise.</summary>
    public static Microsoft.AspNetCore.Html.IHtmlContent Element(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (http.FullPerson() is not { } person) return Microsoft.AspNetCore.Html.HtmlString.Empty;
        var store = http.RequestServices.GetRequiredService<VaubanStore>();
        var options = store.Accounts.Options;
        var end = store.Sessions.EndOf(person.Session);
        var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        return new Microsoft.AspNetCore.Html.HtmlString(string.Create(CultureInfo.InvariantCulture,
            $"""<div id="session-notice" class="session-notice" role="status" hidden data-ends-in="{Seconds(end.At - now)}" data-renewable="{(end.Renewable ? "true" : "false")}" data-warn-before="{Seconds(WarnBefore(options))}" data-idle="{Said(options.IdleTimeout)}" data-absolute="{Said(options.AbsoluteTimeout)}"><span id="session-notice-text"></span> <button type="button" id="stay-signed-in" hidden>Stay signed in</button></div><script src="/account/session.js"></script>"""));
    }

    /// <summary>The answer of "Stay signed in": the session's new end, as the element gives it.</summary>
    public static object Answer(SessionEnd end, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(end);
        return new { endsIn = Seconds(end.At - now), renewable = end.Renewable };
    }

    private static long Seconds(TimeSpan span) => Math.Max(0, (long)Math.Floor(span.TotalSeconds));

    /// <summary>A time-out as the notice says it: "15 minutes", "12 hours", "20 seconds".</summary>
    public static string Said(TimeSpan span) => span switch
    {
        { TotalHours: >= 1 } when span.TotalHours == Math.Floor(span.TotalHours) => Plural((long)span.TotalHours, "hour"),
        { TotalMinutes: >= 1 } when span.TotalMinutes == Math.Floor(span.TotalMinutes) => Plural((long)span.TotalMinutes, "minute"),
        _ => Plural((long)Math.Ceiling(span.TotalSeconds), "second"),
    };

    private static string Plural(long count, string unit) => string.Create(CultureInfo.InvariantCulture, $"{count} {unit}{(count == 1 ? "" : "s")}");
}
