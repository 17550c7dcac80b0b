using Marginal.Core.Deferral;
using Microsoft.Data.Sqlite;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Sqlite;

/// <summary>Deferred jobs (<see cref="IJobStore"/>): one row per job, rewritten whole on each state change.</summary>
public sealed partial class SqliteStore : IJobStore
{
    private const string JobColumns = StoreRows.JobColumns;

    public async Task SaveAsync(DeferredJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"INSERT OR REPLACE INTO deferred_jobs ({JobColumns}) VALUES ($id, $request, $tenant, $key, $model, $status, $created, $deadline, $body, $batch, $result, $error, $finished)";
        var p = command.Parameters;
        p.AddWithValue("$id", job.Id);
        p.AddWithValue("$request", job.RequestId);
        p.AddWithValue("$tenant", job.Tenant);
        p.AddWithValue("$key", job.KeyId);
        p.AddWithValue("$model", job.Model);
        p.AddWithValue("$status", job.Status);
        p.AddWithValue("$created", ToMicros(job.Created));
        p.AddWithValue("$deadline", ToMicros(job.Deadline));
        p.AddWithValue("$body", job.RequestJson);
        p.AddWithValue("$batch", (object?)job.BatchId ?? DBNull.Value);
        p.AddWithValue("$result", (object?)job.ResultJson ?? DBNull.Value);
        p.AddWithValue("$error", (object?)job.ErrorJson ?? DBNull.Value);
        p.AddWithValue("$finished", job.Finished is { } finished ? ToMicros(finished) : DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<DeferredJob?> FindJobAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {JobColumns} FROM deferred_jobs WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadJob(reader) : null;
    }

    public async Task<IReadOnlyList<DeferredJob>> ReadActiveJobsAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {JobColumns} FROM deferred_jobs WHERE status IN ('queued', 'running') ORDER BY created_us, id";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var jobs = new List<DeferredJob>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(StoreRows.ReadJob(reader));
        }
        return jobs;
    }
}
