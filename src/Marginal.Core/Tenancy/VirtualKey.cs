namespace Marginal.Core.Tenancy;

/// <summary>
/// A client key as stored: never the secret itself, only a salted SHA-256 of it. The secret is a 256-bit random value,
/// so a fast salted hash is enough (a slow password hash protects low-entropy secrets, which these are not).
/// </summary>
/// <param name="Id">Public id, part of the key text (<c>mk-{Id}-{secret}</c>); safe to log and show.</param>
/// <param name="Tenant">The tenant every request made with this key is attributed to.</param>
/// <param name="Salt">Random salt, 16 bytes.</param>
/// <param name="Hash">SHA-256 of salt ‖ secret.</param>
/// <param name="Created">When the key was made.</param>
/// <param name="Expires">After this instant the key is refused; null: never.</param>
/// <param name="Revoked">When the key was revoked; null while it is live.</param>
/// <param name="Models">Models the key may call; empty: every model.</param>
public sealed record VirtualKey(
    string Id,
    string Tenant,
    byte[] Salt,
    byte[] Hash,
    DateTimeOffset Created,
    DateTimeOffset? Expires,
    DateTimeOffset? Revoked,
    IReadOnlyList<string> Models)
{
    /// <summary>True when the key may be used at <paramref name="now"/>.</summary>
    public bool IsLive(DateTimeOffset now) => Revoked is null && (Expires is null || now < Expires);

    /// <summary>True when the key may call <paramref name="model"/>.</summary>
    public bool Allows(string model) => Models.Count == 0 || Models.Contains(model, StringComparer.Ordinal);
}

/// <summary>Where virtual keys live. Thread-safe.</summary>
public interface IKeyStore
{
    /// <summary>Stores a new key. Throws when <see cref="VirtualKey.Id"/> exists.</summary>
    Task AddKeyAsync(VirtualKey key, CancellationToken cancellationToken = default);

    /// <summary>The key with <paramref name="id"/>, or null.</summary>
    Task<VirtualKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Every key, revoked and expired ones included, oldest first.</summary>
    Task<IReadOnlyList<VirtualKey>> ListKeysAsync(CancellationToken cancellationToken = default);

    /// <summary>Marks the key revoked at <paramref name="at"/>; false when there is no such key. Revoking twice keeps the first time.</summary>
    Task<bool> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default);
}
