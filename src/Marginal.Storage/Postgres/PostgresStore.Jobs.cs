using Marginal.Core.Deferral;
using Npgsql;
using NpgsqlTypes;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Postgres;

/// <summary>Deferred jobs (<see cref="IJobStore"/>, migration step 5): one row per job, rewritten whole on each state change, as in SQLite.</summary>
public sealed partial class PostgresStore : IJobStore
{
    private const string JobColumns = StoreRows.JobColumns;

    public async Task SaveAsync(DeferredJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        await using var command = _dataSource.CreateCommand(
            $"INSERT INTO deferred_jobs ({JobColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) " +
            "ON CONFLICT (id) DO UPDATE SET request_id = excluded.request_id, tenant = excluded.tenant, key_id = excluded.key_id, model = excluded.model, " +
            "status = excluded.status, created_us = excluded.created_us, deadline_us = excluded.deadline_us, request_json = excluded.request_json, " +
            "batch_id = excluded.batch_id, result_json = excluded.result_json, error_json = excluded.error_json, finished_us = excluded.finished_us");
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string> { TypedValue = job.Id });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.RequestId });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.Tenant });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.KeyId });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.Model });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.Status });
        p.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(job.Created) });
        p.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(job.Deadline) });
        p.Add(new NpgsqlParameter<string> { TypedValue = job.RequestJson });
        p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)job.BatchId ?? DBNull.Value });
        p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)job.ResultJson ?? DBNull.Value });
        p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)job.ErrorJson ?? DBNull.Value });
        p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = job.Finished is { } finished ? ToMicros(finished) : DBNull.Value });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<DeferredJob?> FindJobAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM deferred_jobs WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadJob(reader) : null;
    }

    public async Task<IReadOnlyList<DeferredJob>> ReadActiveJobsAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM deferred_jobs WHERE status IN ('queued', 'running') ORDER BY created_us, id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var jobs = new List<DeferredJob>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(StoreRows.ReadJob(reader));
        }
        return jobs;
    }
}
