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
        // 4 (dashboard): hourly rollups of usage_records, kept at append time in the append's own transaction (every
        // node appends, so a read-time watermark would miss rows that commit out of order); lever savings in a table
        // of their own so they add up in SQL. Existing records are rolled up here, once. Same sums as UsageRollup:
        // an adjustment or outcome counts under its request's hour and dimensions.
        """
        CREATE TABLE usage_rollups (
            hour_us bigint NOT NULL,
            tenant text NOT NULL,
            requested_model text NOT NULL,
            served_model text NOT NULL,
            provider text NOT NULL,
            capacity_source text NOT NULL,
            route_reason text NOT NULL,
            cache_outcome text NOT NULL,
            requests bigint NOT NULL,
            errors bigint NOT NULL,
            input_tokens bigint NOT NULL,
            cached_input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            cost_usd numeric NOT NULL,
            marginal_cost_usd numeric NOT NULL,
            priced_tokens bigint NOT NULL,
            unpriced_requests bigint NOT NULL,
            revenue_usd numeric NOT NULL,
            revenue_records bigint NOT NULL,
            unplanned_requests bigint NOT NULL,
            PRIMARY KEY (hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome)
        );
        CREATE TABLE usage_rollup_levers (
            hour_us bigint NOT NULL,
            tenant text NOT NULL,
            requested_model text NOT NULL,
            served_model text NOT NULL,
            provider text NOT NULL,
            capacity_source text NOT NULL,
            route_reason text NOT NULL,
            cache_outcome text NOT NULL,
            lever text NOT NULL,
            usd numeric NOT NULL,
            PRIMARY KEY (hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome, lever)
        );
        CREATE TEMP TABLE rollup_source ON COMMIT DROP AS
        SELECT u.kind = 'usage' AS is_usage, u.status, u.input_tokens, u.cached_input_tokens, u.output_tokens, u.cost_usd, u.marginal_cost_usd,
            u.revenue_usd, u.levers,
            floor(o.time_us / 3600000000.0)::bigint * 3600000000 AS hour_us, o.tenant, o.requested_model,
            coalesce(o.served_model, '') AS served_model, coalesce(o.provider, '') AS provider, coalesce(o.capacity_source, '') AS capacity_source,
            coalesce(o.route_reason, '') AS route_reason, coalesce(o.cache_outcome, '') AS cache_outcome
        FROM usage_records u
        LEFT JOIN usage_records r ON u.kind <> 'usage' AND r.id = u.adjusts
        CROSS JOIN LATERAL (SELECT CASE WHEN r.id IS NULL THEN u.time_us ELSE r.time_us END AS time_us,
            CASE WHEN r.id IS NULL THEN u.tenant ELSE r.tenant END AS tenant,
            CASE WHEN r.id IS NULL THEN u.requested_model ELSE r.requested_model END AS requested_model,
            CASE WHEN r.id IS NULL THEN u.served_model ELSE r.served_model END AS served_model,
            CASE WHEN r.id IS NULL THEN u.provider ELSE r.provider END AS provider,
            CASE WHEN r.id IS NULL THEN u.capacity_source ELSE r.capacity_source END AS capacity_source,
            CASE WHEN r.id IS NULL THEN u.route_reason ELSE r.route_reason END AS route_reason,
            CASE WHEN r.id IS NULL THEN u.cache_outcome ELSE r.cache_outcome END AS cache_outcome) o;
        INSERT INTO usage_rollups
        SELECT hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome,
            count(*) FILTER (WHERE is_usage), count(*) FILTER (WHERE is_usage AND status <> 'ok'),
            sum(input_tokens), sum(cached_input_tokens), sum(output_tokens),
            coalesce(sum(cost_usd), 0), coalesce(sum(marginal_cost_usd), 0),
            coalesce(sum(input_tokens + output_tokens) FILTER (WHERE cost_usd IS NOT NULL), 0),
            count(*) FILTER (WHERE is_usage AND cost_usd IS NULL AND input_tokens + output_tokens > 0),
            coalesce(sum(revenue_usd), 0), count(revenue_usd), count(*) FILTER (WHERE is_usage AND revenue_usd IS NULL)
        FROM rollup_source
        GROUP BY hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome;
        INSERT INTO usage_rollup_levers
        SELECT hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome,
            split_part(pair, '=', 1), sum(CASE WHEN position('=' in pair) > 0 THEN split_part(pair, '=', 2)::numeric ELSE 0 END)
        FROM rollup_source CROSS JOIN LATERAL (SELECT trim(p) AS pair FROM regexp_split_to_table(levers, ',') p) pairs
        WHERE levers <> '' AND pair <> ''
        GROUP BY hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome, split_part(pair, '=', 1);
        """,
        // 5 (deferral): deferred (batch-tier) jobs and their lifecycle, as SQLite's step 5.
        """
        CREATE TABLE deferred_jobs (
            id text PRIMARY KEY,
            request_id text NOT NULL,
            tenant text NOT NULL,
            key_id text NOT NULL,
            model text NOT NULL,
            status text NOT NULL,
            created_us bigint NOT NULL,
            deadline_us bigint NOT NULL,
            request_json text NOT NULL,
            batch_id text,
            result_json text,
            error_json text,
            finished_us bigint
        );
        CREATE INDEX deferred_jobs_active ON deferred_jobs (status, created_us) WHERE status IN ('queued', 'running');
        """,
        // 6 (persisted router feedback): the prompt embedding of each downgraded request that feedback labelled, as
        // SQLite's step 6. real[] holds float32 exactly; seq orders examples by when they were stored.
        """
        CREATE TABLE route_examples (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text NOT NULL UNIQUE,
            alias text NOT NULL,
            embedding real[] NOT NULL
        );
        """,
        // 7 (idempotency): the hash of the request body that holds an Idempotency-Key's id, as SQLite's step 7.
        """
        ALTER TABLE usage_records ADD COLUMN request_hash text;
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
