// Whether records exist, for an operator's act that names them before it is done: an API client limited to some patients,
// an account acting as a practitioner in a service, a seed that must not load its generator's records a second time. Only
// ids are looked at (no body is read or opened); the question is authorized as a search of the type and recorded, naming
// each record asked about, before the answer is given — which records exist is itself something a reader learns.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Fhir;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    /// <summary>Those of <paramref name="ids"/> that name no live (existing, not deleted) <paramref name="type"/> record of the
    /// context's establishment, in the order given; <paramref name="what"/> names the act that asks ("clients add --patients").</summary>
    /// <exception cref="UnauthorizedAccessException">The context may not search the type, or the guard holds it.</exception>
    public async Task<IReadOnlyList<string>> UnknownAsync(AccessContext context, string type, IReadOnlyCollection<string> ids, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (await CheckAsync(context, Interaction.Search, type, null, cancellationToken) is { } refused)
        {
            throw new UnauthorizedAccessException(refused.Issues is [var issue, ..] ? issue.Diagnostics : $"Not allowed to search {type}.");
        }
        var valid = ids.Where(IdRules.IsValid).Distinct(StringComparer.Ordinal).ToList();
        var live = await _rows.LiveIdsAsync(context.Tenant.Id, TypeCodes.Of(type), valid, cancellationToken);
        var unknown = ids.Where(id => !live.Contains(id)).Distinct(StringComparer.Ordinal).ToList();
        await AuditAsync(context, AuditAction.Search, AuditOutcome.Success, type, [.. valid.Select(id => new AuditedRecord(type, id, PatientNamed(type, id)))],
            cancellationToken, note: $"{what}: whether {valid.Count} {type} record(s) exist ({unknown.Count} unknown)");
        return unknown;
    }
}
