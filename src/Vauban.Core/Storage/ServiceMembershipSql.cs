// Whether a practitioner belongs to a service: an active PractitionerRole of the same establishment, not deleted, that names both
// the Practitioner and the service's Organization. Read from the references the index keeps in clear and, for `active`, the
// establishment's blind-index hash of "false" (as any token search of it): nothing is decrypted. The front desk's view of a
// practitioner's agenda is open only for the practitioners of its own service (ADR 0006, revision of 2026-12-07).
using System.Data.Common;

namespace Vauban.Storage;

internal static class ServiceMembershipSql
{
    private const int PractitionerRoleType = 3;
    // PractitionerRole.practitioner, PractitionerRole.organization (SearchParameters' stable codes).
    private const int RolePractitioner = 301;
    private const int RoleOrganization = 302;

    /// <param name="inactive">The establishment's hash of PractitionerRole.active "false": a role marked inactive is no membership.</param>
    public static async Task<bool> IsMemberAsync(StoreDatabase database, long tenant, string practitioner, string organization, long inactive,
        CancellationToken cancellationToken)
    {
        using var command = database.NewCommand();
        command.With("t", tenant).With("p", "Practitioner/" + practitioner).With("o", "Organization/" + organization);
        string notInactive;
        if (database.Engine == StorageEngine.Postgres)
        {
            command.With("v", new[] { inactive });
            notInactive = "NOT (s.hashes && @v)";
        }
        else
        {
            command.With("v", inactive);
            notInactive = "NOT EXISTS (SELECT 1 FROM idx_hash v WHERE v.rid = a.rid AND v.h = @v)";
        }
        command.CommandText = $"""
            SELECT CASE WHEN EXISTS (SELECT 1 FROM idx_ref a JOIN resources s ON s.rid = a.rid
                WHERE a.target = @p AND a.param = {RolePractitioner} AND s.tenant_id = @t AND s.type = {PractitionerRoleType} AND s.deleted = 0
                  AND EXISTS (SELECT 1 FROM idx_ref b WHERE b.target = @o AND b.param = {RoleOrganization} AND b.rid = a.rid)
                  AND {notInactive}) THEN 1 ELSE 0 END
            """;
        return await database.QueryLookupAsync(command, async (reader, ct) =>
            await reader.ReadAsync(ct) && Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) == 1, cancellationToken);
    }
}
