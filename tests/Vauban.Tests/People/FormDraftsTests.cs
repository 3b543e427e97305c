// What a person typed into a form whose sending asked for both factors again, kept for her to find after proving them:
// once, for her session and that page, for 15 minutes; a session keeps only its newest few, so one sending forms for many
// pages evicts its own drafts, not other people's.
using Vauban.Tests.Infrastructure;
using Vauban.Web;

namespace Vauban.Tests.People;

public sealed class FormDraftsTests
{
    private static Dictionary<string, string?> Typed(string text) => new() { ["Text"] = text };

    [Fact]
    public void A_draft_is_given_back_once_to_its_session_and_page_within_fifteen_minutes()
    {
        var time = new ManualTime(new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero));
        var drafts = new FormDrafts(time);
        drafts.Keep("s1", "/patients/a/break-the-glass", Typed("inconsciente"));
        Assert.Null(drafts.Take("s2", "/patients/a/break-the-glass"));
        Assert.Null(drafts.Take("s1", "/patients/b/break-the-glass"));
        Assert.Equal("inconsciente", drafts.Take("s1", "/patients/a/break-the-glass")!["Text"]);
        Assert.Null(drafts.Take("s1", "/patients/a/break-the-glass"));

        drafts.Keep("s1", "/patients/a/break-the-glass", Typed("plus tard"));
        time.Advance(TimeSpan.FromMinutes(16));
        Assert.Null(drafts.Take("s1", "/patients/a/break-the-glass"));
    }

    [Fact]
    public void One_session_keeping_drafts_for_many_pages_evicts_its_own_not_another_persons()
    {
        var time = new ManualTime(new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero));
        var drafts = new FormDrafts(time);
        drafts.Keep("other", "/patients/x/break-the-glass", Typed("la sienne"));
        for (var i = 0; i < 20_000; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
            drafts.Keep("flood", $"/patients/p{i}/break-the-glass", Typed("bruit"));
        }
        Assert.Equal("la sienne", drafts.Take("other", "/patients/x/break-the-glass")!["Text"]);
        // The flooding session keeps its newest few only.
        Assert.NotNull(drafts.Take("flood", "/patients/p19999/break-the-glass"));
        Assert.Null(drafts.Take("flood", $"/patients/p{19_999 - FormDrafts.MaxPerSession}/break-the-glass"));
    }
}

public sealed class BoundedMemoryTests
{
    [Fact]
    public void A_full_map_drops_what_has_expired_then_if_still_full_the_half_that_expires_first()
    {
        var map = new System.Collections.Concurrent.ConcurrentDictionary<int, long>();
        for (var i = 0; i < 10; i++) map[i] = 100 + i; // entry i lives until 100 + i
        BoundedMemory.MakeRoom(map, 11, now: 200, until: v => v);
        Assert.Equal(10, map.Count); // not full: nothing goes, not even the expired
        BoundedMemory.MakeRoom(map, 10, now: 103, until: v => v);
        Assert.Equal([4, 5, 6, 7, 8, 9], map.Keys.Order()); // full: the four expired go, and that makes room
        BoundedMemory.MakeRoom(map, 6, now: 0, until: v => v);
        Assert.Equal([7, 8, 9], map.Keys.Order()); // still full of live entries: the half that expires first goes
    }
}
