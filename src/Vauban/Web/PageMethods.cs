// A page is read (GET, HEAD) and its forms are sent (POST); another method (PUT, DELETE, PATCH…) is no way of using a page.
// It is answered 405 with the methods a page takes, and the status-code page says so — before, the antiforgery check, which
// runs first for every method that may change something, answered "This form has expired", which it was not.
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;

namespace Vauban.Web;

internal sealed class PageMethods : IAlwaysRunResultFilter, IOrderedFilter
{
    /// <summary>Before ExpiredForms, which would otherwise take the antiforgery refusal for an expired form.</summary>
    public int Order => int.MinValue;

    public void OnResultExecuting(ResultExecutingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var method = context.HttpContext.Request.Method;
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsPost(method)) return;
        context.HttpContext.Response.Headers.Allow = "GET, HEAD, POST";
        context.Result = new StatusCodeResult(StatusCodes.Status405MethodNotAllowed);
    }

    public void OnResultExecuted(ResultExecutedContext context)
    {
    }
}
