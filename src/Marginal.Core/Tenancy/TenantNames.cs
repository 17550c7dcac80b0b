using System.Buffers;
using System.Text;

namespace Marginal.Core.Tenancy;

/// <summary>
/// What a tenant name may be, and how a name becomes part of a ledger id. A tenant name is 1 to 64 ASCII letters,
/// digits, <c>.</c>, <c>_</c> or <c>-</c>, starting with a letter or digit: it ends up in ledger ids, cache and counter
/// keys, headers, logs and CSV cells, so it holds no separator (<c>:</c>), no control or bidirectional character and
/// nothing a spreadsheet reads as a formula.
/// </summary>
public static class TenantNames
{
    /// <summary>The longest tenant name accepted.</summary>
    public const int MaxLength = 64;

    /// <summary>The rule, as error messages state it.</summary>
    public const string Rule = "1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit";

    private static readonly SearchValues<char> Allowed = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    /// <summary>True when <paramref name="name"/> follows <see cref="Rule"/>.</summary>
    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= MaxLength } && char.IsAsciiLetterOrDigit(name[0]) && !name.AsSpan().ContainsAnyExcept(Allowed);

    /// <summary>
    /// The tenant as the first part of a ledger id <c>{tenant}:{Idempotency-Key}</c>. A valid name is itself (so ids
    /// stored before names were checked keep their form); a name from before the rule that holds <c>:</c>, <c>%</c> or
    /// other characters outside it has those percent-encoded (UTF-8), so the first <c>:</c> of an id always ends the
    /// tenant and two tenants never share an id.
    /// </summary>
    public static string IdPrefix(string tenant)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        if (!tenant.AsSpan().ContainsAnyExcept(Allowed))
        {
            return tenant;
        }
        var escaped = new StringBuilder(tenant.Length + 8);
        Span<byte> bytes = stackalloc byte[4];
        foreach (var rune in tenant.EnumerateRunes())
        {
            if (rune.IsAscii && Allowed.Contains((char)rune.Value))
            {
                escaped.Append((char)rune.Value);
                continue;
            }
            var length = rune.EncodeToUtf8(bytes);
            foreach (var b in bytes[..length])
            {
                escaped.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return escaped.ToString();
    }
}
