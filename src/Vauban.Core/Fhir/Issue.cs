// An OperationOutcome issue. Diagnostics are written for the caller and must never quote patient data
// back (an invalid NIR is reported as invalid, not repeated).
namespace Vauban.Fhir;

public sealed record Issue(string Severity, string Code, string Diagnostics, string? Expression = null)
{
    public static Issue Error(string code, string diagnostics, string? expression = null) => new("error", code, diagnostics, expression);
    public static Issue Invalid(string diagnostics, string? expression = null) => new("error", "invalid", diagnostics, expression);
    public static Issue NotFound(string diagnostics) => new("error", "not-found", diagnostics);
    public static Issue NotSupported(string diagnostics) => new("error", "not-supported", diagnostics);
    public static Issue Forbidden(string diagnostics) => new("error", "forbidden", diagnostics);
    public static Issue Conflict(string diagnostics) => new("error", "conflict", diagnostics);
    public static Issue Information(string diagnostics) => new("information", "informational", diagnostics);
}
