using Microsoft.Data.Sqlite;

namespace Vauban.Tests.Storage;

public class StoreFailureMessagesTests
{
    [Theory]
    [InlineData(8, true)]     // SQLITE_READONLY: a read-only file or folder, another account's file
    [InlineData(14, true)]    // SQLITE_CANTOPEN: the folder cannot take the -wal and -shm files
    [InlineData(8 | (1 << 8), true)] // an extended code of either (SQLITE_READONLY_RECOVERY)
    [InlineData(5, false)]    // locked by another process: not a matter of permissions
    [InlineData(19, false)]   // a constraint: not the store's access at all
    public void A_store_that_cannot_be_written_tells_the_operator_what_to_check(int code, bool hinted)
    {
        var error = new InvalidOperationException("wrapped", new SqliteException("SQLite error", code));
        var hint = VaubanStore.WriteAccessHint(error);
        Assert.Equal(hinted, hint is not null);
        if (hinted) Assert.Contains("copy it somewhere writable first", hint, StringComparison.Ordinal);
    }
}
