using Vauban.Records;

namespace Vauban.Tests.Records;

// The operator types a job id after `vauban guard approve-export|deny-export`: one that began with '-' was read as an
// option (CI saw "-hFzz…" print the command's help instead of denying). One id in 64 began so before.
public class ExportJobIdTests
{
    [Fact]
    public void New_job_ids_are_valid_and_never_begin_with_a_dash()
    {
        var ids = Enumerable.Range(0, 20_000).Select(_ => ExportJob.NewId()).ToList();
        Assert.All(ids, id => Assert.True(ExportJob.IsValidId(id), id));
        Assert.DoesNotContain(ids, id => id[0] == '-');
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        // Still every other URL-safe character in first place, '_' included: the ids keep their 128 random bits' spread.
        Assert.Contains(ids, id => id[0] == '_');
    }
}
