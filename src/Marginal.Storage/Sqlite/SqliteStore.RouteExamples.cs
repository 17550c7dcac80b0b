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
        var examples = new List<RouteExample>();
        await ReadAsync("SELECT request_id, alias, embedding FROM route_examples ORDER BY seq", [], examples, cancellationToken).ConfigureAwait(false);
        return examples;
    }

    public async Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(IReadOnlyCollection<string> requestIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requestIds);
        var examples = new List<RouteExample>();
        // In chunks, within SQLite's limit on the parameters of one statement.
        foreach (var chunk in requestIds.Chunk(500))
        {
            var names = string.Join(", ", chunk.Select((_, i) => $"$id{i}"));
            await ReadAsync($"SELECT request_id, alias, embedding FROM route_examples WHERE request_id IN ({names})", chunk, examples, cancellationToken).ConfigureAwait(false);
        }
        return examples;
    }

    private async Task ReadAsync(string sql, string[] ids, List<RouteExample> examples, CancellationToken cancellationToken)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 0; i < ids.Length; i++)
        {
            command.Parameters.AddWithValue($"$id{i}", ids[i]);
        }
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var bytes = (byte[])reader.GetValue(2);
            examples.Add(new RouteExample(reader.GetString(0), reader.GetString(1), MemoryMarshal.Cast<byte, float>(bytes).ToArray()));
        }
    }
}
