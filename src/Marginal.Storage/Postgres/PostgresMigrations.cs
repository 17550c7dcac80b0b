using Npgsql;

namespace Marginal.Storage.Postgres;

/// <summary>
/// The schema, as numbered steps, the same tables and columns as <c>SqliteMigrations</c>. The table
/// <c>marginal_schema</c> holds the last step applied; opening a store applies the rest in one transaction under an
/// advisory lock, so several nodes starting at once migrate once. Steps are never edited once shipped.
/// </summary>
internal static class PostgresMigrations
{
    // Money is numeric (exact, any scale a decimal has). Times are Unix microseconds, as in SQLite, so both stores
    // order and window records identically.
    private static readonly string[] Steps =
    [
        """
        CREATE TABLE usage_records (
            id text PRIMARY KEY,
            time_us bigint NOT NULL,
            tenant text NOT NULL,
            key_id text NOT NULL,
            requested_model text NOT NULL,
            served_model text,
            provider text,
            capacity_source text,
            status text NOT NULL,
            streamed boolean NOT NULL,
            input_tokens bigint NOT NULL,
            cached_input_tokens bigint NOT NULL,
            cache_write_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            reasoning_tokens bigint NOT NULL,
            usage_source text NOT NULL,
            latency_ms double precision NOT NULL,
            ttft_ms double precision,
            cost_usd numeric,
            marginal_cost_usd numeric,
            revenue_usd numeric,
            cache_outcome text,
            route_reason text,
            levers text NOT NULL,
            savings_usd numeric,
            attempts integer NOT NULL
        );
        CREATE INDEX usage_records_time ON usage_records (time_us);
        CREATE TABLE virtual_keys (
            id text PRIMARY KEY,
            tenant text NOT NULL,
            salt bytea NOT NULL,
            hash bytea NOT NULL,
            created_us bigint NOT NULL,
            expires_us bigint,
            revoked_us bigint,
            models text NOT NULL
        );
        """,
        // 2: adjustment and outcome records, semantic-cache similarity, request tags; client feedback.
        """
        ALTER TABLE usage_records ADD COLUMN kind text NOT NULL DEFAULT 'usage';
        ALTER TABLE usage_records ADD COLUMN adjusts text;
        ALTER TABLE usage_records ADD COLUMN cache_similarity double precision;
        ALTER TABLE usage_records ADD COLUMN tags text NOT NULL DEFAULT '';
        CREATE INDEX usage_records_adjusts ON usage_records (adjusts) WHERE adjusts IS NOT NULL;
        CREATE TABLE feedback (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text NOT NULL,
            time_us bigint NOT NULL,
            tenant text NOT NULL,
            score double precision,
            outcome text
        );
        CREATE INDEX feedback_time ON feedback (time_us);
        CREATE INDEX feedback_request ON feedback (request_id);
        """,
        // 3 (pricing plans): prepaid credit grants, burnt down by revenue in the ledger.
        """
        CREATE TABLE credit_grants (
            id text PRIMARY KEY,
            tenant text NOT NULL,
            usd numeric NOT NULL,
            granted_us bigint NOT NULL,
            expires_us bigint
        );
        """,
    ];

    // pg_advisory_xact_lock key: "marginal" as ASCII bytes, an arbitrary constant that other applications are unlikely to use.
    private const long MigrationLock = 0x6d617267696e616c;

    /// <summary>The schema version this build writes.</summary>
    public static int Latest => Steps.Length;

    /// <summary>Applies every step past the database's version. Throws when the database is newer than this build.</summary>
    public static async Task ApplyAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "CREATE TABLE IF NOT EXISTS marginal_schema (version integer NOT NULL)", cancellationToken).ConfigureAwait(false);
        await using var read = new NpgsqlCommand("SELECT max(version) FROM marginal_schema", connection, transaction);
        var version = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int v ? v : 0;
        if (version > Latest)
        {
            throw new InvalidDataException($"PostgreSQL ledger schema version {version} is newer than this build's {Latest}; upgrade Marginal");
        }
        for (var step = version; step < Latest; step++)
        {
            await ExecuteAsync(connection, transaction, Steps[step], cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"DELETE FROM marginal_schema; INSERT INTO marginal_schema (version) VALUES ({step + 1})", cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
