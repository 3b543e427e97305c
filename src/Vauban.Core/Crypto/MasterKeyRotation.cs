// What a master key rotation did (VaubanStore.RotateMasterKeyAsync), and the one failure after which nobody can say whether it
// happened.
namespace Vauban.Crypto;

/// <summary>A rotation committed: <paramref name="Keys"/> keys of <paramref name="Establishments"/> establishments re-wrapped,
/// counted in its own transaction.</summary>
public sealed record MasterKeyRotation(int Keys, int Establishments);

/// <summary>
/// The rotation failed once its COMMIT had been sent (a connection lost or a timeout while the commit was in flight, a
/// cancellation): the database may have applied it, or may still apply it after a read on another connection has seen the
/// previous binding. Until the store is opened with one key or the other, both the new key and the old one must be kept:
/// either may be the store's only key.
/// </summary>
public sealed class MasterKeyRotationUnsettledException : Exception
{
    public MasterKeyRotationUnsettledException() { }

    public MasterKeyRotationUnsettledException(string message) : base(message) { }

    public MasterKeyRotationUnsettledException(string message, Exception inner) : base(message, inner) { }
}
