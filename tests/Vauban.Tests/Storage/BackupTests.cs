// `vauban backup` as a practice's or clinic's operator relies on it: a copy of the SQLite store taken while the server runs and
// writes, which opens with the master key, verifies, holds what was committed when it began and nothing in clear; refused
// over an existing file and for a PostgreSQL store, on the chain either way.
using System.Net;
using System.Text;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Storage;

[Collection("console")]
public sealed class BackupTests : IAsyncLifetime
{
    private const string Family = "Sauvegardeuse";
    private const string Phone = "+33 6 71 82 93 04";
    private VaubanServer _server = null!;
    private string _folder = "";
    private string _keyFile = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite);
        _folder = Path.Combine(Path.GetTempPath(), "vauban-backup-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_folder);
        // The running server's master key, as the operator's key file.
        _keyFile = Path.Combine(_folder, "master.key");
        await File.WriteAllTextAsync(_keyFile, Convert.ToBase64String(_server.MasterKey.Bytes.ToArray()));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    private Task<(int Exit, string Output)> BackupAsync(string target, string? db = null) =>
        CliRunner.RunAsync(["backup", target, "--db", db ?? _server.Db, "--master-key-file", _keyFile]);

    [Fact]
    public async Task A_backup_taken_while_the_server_writes_opens_with_the_master_key_verifies_and_holds_nothing_in_clear()
    {
        using var api = await _server.ClientAsync("chu-backup");
        using (var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: Family, phone: Phone))))
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        // Writes go on while the copy is taken: the copy is the store as it was when it began, whole.
        using var writing = new CancellationTokenSource();
        var writerStarted = new TaskCompletionSource();
        var writer = Task.Run(async () =>
        {
            var written = 0;
            while (!writing.IsCancellationRequested)
            {
                using var response = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Pendant" + written)));
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                written++;
                writerStarted.TrySetResult();
            }
            return written;
        });
        await writerStarted.Task;
        var target = Path.Combine(_folder, "copy.db");
        var (exit, output) = await BackupAsync(target);
        await writing.CancelAsync();
        await writer; // every write the server acknowledged meanwhile succeeded
        Assert.True(exit == 0, output);
        Assert.Contains("Backed up", output, StringComparison.Ordinal);
        Assert.Contains(_server.MasterKey.Fingerprint, output, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target));

        // Nothing identifying in clear in the copy's bytes (invariant 4: backups too).
        var bytes = await File.ReadAllBytesAsync(target);
        foreach (var canary in new[] { Family, "SAUVEGARDEUSE", Phone, "71 82 93 04" })
        {
            Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(canary)) < 0, canary + " in clear in the backup");
        }

        // The copy is a store: it opens with the master key, its chain verifies, the patient reads back, and the backup is on its chain.
        await using var copy = await VaubanStore.OpenAsync(new StoreOptions(target, _server.MasterKey), CancellationToken.None);
        var tenant = (await copy.Tenants.FindAsync("chu-backup", CancellationToken.None))!;
        var verified = await copy.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
        Assert.Null(verified.Problem);
        var officer = AccessContext.Operator(tenant, "backup test");
        var found = await copy.Records.SearchAsync(officer, "Patient", [new("family", Family)], null, lenient: false, CancellationToken.None);
        Assert.Equal(RecordStatus.Ok, found.Status);
        Assert.Contains(Family, Encoding.UTF8.GetString(Assert.Single(found.Entries).Json!), StringComparison.Ordinal);
        var acts = await copy.AuditLog.SearchAsync(officer, new AuditQuery { Actions = [AuditAction.Administration], Count = 50 }, CancellationToken.None) ?? [];
        Assert.Contains(acts, e => e.Detail.Note == $"backup: a copy of the store written to {target}");
    }

    [Fact]
    public async Task The_backups_name_never_holds_a_partial_copy_the_copy_is_written_under_a_partial_name_and_renamed_once_checked()
    {
        // Killed during VACUUM INTO, a copy written under the backup's own name was left there, half-written with its hot journal,
        // and opening it later made it an empty store: `audit verify` said "nothing to verify".
        await _server.Store.Tenants.AddAsync("chu-backup", CancellationToken.None);
        var target = Path.Combine(_folder, "copy.db");
        string? seen = null;
        _server.Store.BackupCopyWritten = (partial, _) =>
        {
            seen = partial;
            Assert.False(File.Exists(target), "the backup's name holds the copy before it is whole and checked");
            Assert.Equal(_folder, Path.GetDirectoryName(partial)); // renamed within one folder: one file system, never a copy
            Assert.StartsWith(target + ".partial-", partial, StringComparison.Ordinal);
            Assert.True(File.Exists(partial));
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(partial));
            return Task.CompletedTask;
        };
        try
        {
            var written = await _server.Store.BackupAsync(target, tenant => AccessContext.Operator(tenant, "backup test"), CancellationToken.None);
            Assert.Equal(target, written.Path);
        }
        finally
        {
            _server.Store.BackupCopyWritten = null;
        }
        Assert.NotNull(seen);
        Assert.False(File.Exists(seen));
        Assert.Equal([Path.Combine(_folder, "copy.db"), _keyFile], Directory.GetFiles(_folder).Order(StringComparer.Ordinal));
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target));
        var (verified, output) = await CliRunner.RunAsync(["audit", "verify", "--db", target, "--master-key-file", _keyFile]);
        Assert.True(verified == 0, output);
    }

    [Fact]
    public async Task A_backup_interrupted_while_copying_leaves_no_file_under_the_backups_name()
    {
        await _server.Store.Tenants.AddAsync("chu-backup", CancellationToken.None);
        var target = Path.Combine(_folder, "copy.db");
        _server.Store.BackupCopyWritten = (_, _) => throw new IOException("the disk is full");
        try
        {
            await Assert.ThrowsAsync<IOException>(() => _server.Store.BackupAsync(target, tenant => AccessContext.Operator(tenant, "backup test"), CancellationToken.None));
        }
        finally
        {
            _server.Store.BackupCopyWritten = null;
        }
        Assert.Equal([_keyFile], Directory.GetFiles(_folder));
    }

    [Fact]
    public async Task A_backup_never_overwrites_a_file_and_a_PostgreSQL_store_is_sent_to_pg_dump()
    {
        await _server.Store.Tenants.AddAsync("chu-backup", CancellationToken.None);
        var target = Path.Combine(_folder, "existing.db");
        await File.WriteAllTextAsync(target, "yesterday's backup");
        var (exit, output) = await BackupAsync(target);
        Assert.Equal(2, exit); // a usage error, on either engine (OperatorMistakeTests)
        Assert.Contains($"<file>: {target} already exists", output, StringComparison.Ordinal);
        Assert.Equal("yesterday's backup", await File.ReadAllTextAsync(target));

        var (folder, folderOutput) = await BackupAsync(_folder);
        Assert.Equal(2, folder);
        Assert.Contains($"<file>: {_folder} is a folder", folderOutput, StringComparison.Ordinal);

        var (postgres, postgresOutput) = await BackupAsync(Path.Combine(_folder, "pg.db"), PostgresServer.AdminConnectionString);
        Assert.Equal(1, postgres);
        Assert.Contains("pg_dump", postgresOutput, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "pg.db")));
    }
}
