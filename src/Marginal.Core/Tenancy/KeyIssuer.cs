using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Marginal.Core.Tenancy;

/// <summary>
/// Makes and checks virtual keys. The key text is <c>mk-{id}-{secret}</c>: <c>id</c> is 12 lowercase hex digits (public,
/// the lookup handle), <c>secret</c> 32 random bytes in base64url. Only a salted hash of the secret is ever stored, so
/// the text is shown once, when the key is made. Pure apart from the random source; thread-safe.
/// </summary>
public static class KeyIssuer
{
    private const string Prefix = "mk-";
    private const int IdBytes = 6;
    private const int SecretBytes = 32;
    private const int SaltBytes = 16;

    /// <summary>A new key for <paramref name="tenant"/>: what to store, and the text to hand to the client once.</summary>
    public static (VirtualKey Key, string Text) Issue(string tenant, DateTimeOffset now, DateTimeOffset? expires = null, IReadOnlyList<string>? models = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tenant);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdBytes));
        var secret = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var key = new VirtualKey(id, tenant, salt, HashSecret(salt, secret), now, expires, null, models ?? []);
        return (key, $"{Prefix}{id}-{secret}");
    }

    /// <summary>Splits key text into its id and secret; false when the text is not shaped like a Marginal key.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out string id, out string secret)
    {
        id = secret = "";
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || text.Length < Prefix.Length + IdBytes * 2 + 2 || text[Prefix.Length + IdBytes * 2] != '-')
        {
            return false;
        }
        id = text.Slice(Prefix.Length, IdBytes * 2).ToString();
        secret = text[(Prefix.Length + IdBytes * 2 + 1)..].ToString();
        return true;
    }

    /// <summary>True when <paramref name="secret"/> is the key's secret. Compared in constant time.</summary>
    public static bool Verify(VirtualKey key, string secret)
    {
        ArgumentNullException.ThrowIfNull(key);
        return CryptographicOperations.FixedTimeEquals(HashSecret(key.Salt, secret), key.Hash);
    }

    private static byte[] HashSecret(byte[] salt, string secret)
    {
        var secretBytes = Encoding.UTF8.GetBytes(secret);
        var input = new byte[salt.Length + secretBytes.Length];
        salt.CopyTo(input, 0);
        secretBytes.CopyTo(input, salt.Length);
        return SHA256.HashData(input);
    }
}
