using Marginal.Core.Ledger;
using Npgsql;

namespace Marginal.Storage.Postgres;

/// <summary>
/// The router's labelled prompt embeddings (<see cref="IRouteExampleStore"/>, migration step 6) as <c>real[]</c>. Every
/// node of a cluster reads the same table on start, so feedback given through one node is learned by all after a restart.
/// </summary>
public sealed partial class PostgresStore : IRouteExampleStore
{
    public async Task SaveRouteExampleAsync(RouteExample example, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(example);
        await using var command = _dataSource.CreateCommand(
            "INSERT INTO route_examples (request_id, alias, embedding) VALUES ($1, $2, $3) ON CONFLICT (request_id) DO NOTHING");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = example.RequestId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = example.Alias });
        command.Parameters.Add(new NpgsqlParameter<float[]> { TypedValue = example.Embedding });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT request_id, alias, embedding FROM route_examples ORDER BY seq");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var examples = new List<RouteExample>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            examples.Add(new RouteExample(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<float[]>(2)));
        }
        return examples;
    }

    public async Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(IReadOnlyCollection<string> requestIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requestIds);
        await using var command = _dataSource.CreateCommand("SELECT request_id, alias, embedding FROM route_examples WHERE request_id = ANY($1)");
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. requestIds] });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var examples = new List<RouteExample>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            examples.Add(new RouteExample(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<float[]>(2)));
        }
        return examples;
    }
}
