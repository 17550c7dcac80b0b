namespace Marginal.Core.Pricing;

/// <summary>
/// The catalog with its prices, keyed by model id (ordinal, case-sensitive, like model names in the config).
/// Immutable: <see cref="Merge"/> returns a new book, so a book can be shared across threads and swapped whole.
/// </summary>
public sealed class PriceBook
{
    private readonly Dictionary<string, CatalogEntry> _entries;

    public PriceBook(IEnumerable<CatalogEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        _entries = new Dictionary<string, CatalogEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            // Last one wins, the same rule Merge applies between books.
            _entries[entry.Id] = entry;
        }
    }

    /// <summary>An empty book.</summary>
    public static PriceBook Empty { get; } = new([]);

    /// <summary>Every entry, in no particular order.</summary>
    public IReadOnlyCollection<CatalogEntry> Entries => _entries.Values;

    public int Count => _entries.Count;

    /// <summary>True and the entry when <paramref name="modelId"/> is in the book; false and null otherwise.</summary>
    public bool TryGet(string modelId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CatalogEntry? entry) =>
        _entries.TryGetValue(modelId, out entry);

    /// <summary>
    /// This book with <paramref name="overrides"/> laid over it: an entry of the override replaces the entry with the same
    /// id whole (no field-by-field mixing, so a price never pairs with another entry's source); other entries are kept.
    /// </summary>
    public PriceBook Merge(PriceBook overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        return new PriceBook(_entries.Values.Concat(overrides._entries.Values));
    }
}
