using System.Runtime.InteropServices;
using Marginal.Core.Ledger;

namespace Marginal.Storage.Sqlite;

/// <summary>The router's labelled prompt embeddings (<see cref="IRouteExampleStore"/>): float32 little-endian blobs.</summary>
public sealed partial class SqliteStore : IRouteExampleStore
{
    public async Task SaveRouteExampleAsync(RouteExample example, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(example);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT OR IGNORE INTO route_examples (request_id, alias, embedding) VALUES ($id, $alias, $embedding)";
        command.Parameters.AddWithValue("$id", example.RequestId);
        command.Parameters.AddWithValue("$alias", example.Alias);
        command.Parameters.AddWithValue("$embedding", MemoryMarshal.AsBytes(example.Embedding.AsSpan()).ToArray());
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, alias, embedding FROM route_examples ORDER BY seq";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var examples = new List<RouteExample>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var bytes = (byte[])reader.GetValue(2);
            examples.Add(new RouteExample(reader.GetString(0), reader.GetString(1), MemoryMarshal.Cast<byte, float>(bytes).ToArray()));
        }
        return examples;
    }
}
