namespace Vauban;

/// <summary>A start-up or configuration problem the operator must fix; its message is shown as is.</summary>
public sealed class VaubanConfigurationException : Exception
{
    public VaubanConfigurationException(string message) : base(message) { }
    public VaubanConfigurationException(string message, Exception inner) : base(message, inner) { }
    public VaubanConfigurationException() { }

    /// <summary>The store refused the master key given: it was made with another one.</summary>
    public bool OtherMasterKey { get; init; }

    /// <summary>Of <see cref="OtherMasterKey"/>: the store's key was rotated by another process since this one started, and this one
    /// holds the previous key (not a key wrap that does not open under the store's own key).</summary>
    public bool MasterKeyRotated { get; init; }
}
