using Microsoft.Data.Sqlite;

namespace Marginal.Storage.Sqlite;

/// <summary>
/// The schema, as numbered steps. <c>PRAGMA user_version</c> holds the last step applied; opening a store applies the
/// rest in one transaction. Steps are never edited once shipped: a change is a new step.
/// </summary>
internal static class SqliteMigrations
{
    // Money is TEXT holding an invariant decimal: SQLite's REAL would round it. Times are Unix microseconds.
    private static readonly string[] Steps =
    [
        """
        CREATE TABLE usage_records (
            id TEXT PRIMARY KEY,
            time_us INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            served_model TEXT,
            provider TEXT,
            capacity_source TEXT,
            status TEXT NOT NULL,
            streamed INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            usage_source TEXT NOT NULL,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            cost_usd TEXT,
            marginal_cost_usd TEXT,
            revenue_usd TEXT,
            cache_outcome TEXT,
            route_reason TEXT,
            levers TEXT NOT NULL,
            savings_usd TEXT,
            attempts INTEGER NOT NULL
        );
        CREATE INDEX usage_records_time ON usage_records (time_us);
        CREATE TABLE virtual_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            salt BLOB NOT NULL,
            hash BLOB NOT NULL,
            created_us INTEGER NOT NULL,
            expires_us INTEGER,
            revoked_us INTEGER,
            models TEXT NOT NULL
        );
        """,
        // 2: adjustment and outcome records, semantic-cache similarity, request tags; client feedback.
        """
        ALTER TABLE usage_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'usage';
        ALTER TABLE usage_records ADD COLUMN adjusts TEXT;
        ALTER TABLE usage_records ADD COLUMN cache_similarity REAL;
        ALTER TABLE usage_records ADD COLUMN tags TEXT NOT NULL DEFAULT '';
        CREATE INDEX usage_records_adjusts ON usage_records (adjusts) WHERE adjusts IS NOT NULL;
        CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            score REAL,
            outcome TEXT
        );
        CREATE INDEX feedback_time ON feedback (time_us);
        CREATE INDEX feedback_request ON feedback (request_id);
        """,
        // 3 (pricing plans): prepaid credit grants, burnt down by revenue in the ledger.
        """
        CREATE TABLE credit_grants (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            usd TEXT NOT NULL,
            granted_us INTEGER NOT NULL,
            expires_us INTEGER
        );
        """,
        // 4 (dashboard): hourly rollups of usage_records for the dashboard and economics report, rolled forward from
        // the last rowid read (rollup_state) when read, so the append path does no extra work.
        """
        CREATE TABLE usage_rollups (
            hour_us INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            served_model TEXT NOT NULL,
            provider TEXT NOT NULL,
            capacity_source TEXT NOT NULL,
            route_reason TEXT NOT NULL,
            cache_outcome TEXT NOT NULL,
            requests INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd TEXT NOT NULL,
            marginal_cost_usd TEXT NOT NULL,
            priced_tokens INTEGER NOT NULL,
            unpriced_requests INTEGER NOT NULL,
            revenue_usd TEXT NOT NULL,
            revenue_records INTEGER NOT NULL,
            unplanned_requests INTEGER NOT NULL,
            levers TEXT NOT NULL,
            PRIMARY KEY (hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome)
        );
        CREATE TABLE rollup_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_rowid INTEGER NOT NULL);
        INSERT INTO rollup_state (id, last_rowid) VALUES (1, 0);
        """,
        // 5 (deferral) — deferred (batch-tier) jobs and their lifecycle.
        """
        CREATE TABLE deferred_jobs (
            id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            deadline_us INTEGER NOT NULL,
            request_json TEXT NOT NULL,
            batch_id TEXT,
            result_json TEXT,
            error_json TEXT,
            finished_us INTEGER
        );
        CREATE INDEX deferred_jobs_active ON deferred_jobs (status, created_us) WHERE status IN ('queued', 'running');
        """,
        // Step 6 (persisted router feedback): the prompt embedding of each downgraded request that feedback labelled,
        // so the router's labels are rebuilt on start (the label comes from the feedback rows).
        """
        CREATE TABLE route_examples (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL UNIQUE,
            alias TEXT NOT NULL,
            embedding BLOB NOT NULL
        );
        """,
        // Step 7 (idempotency): the hash of the request body that holds an Idempotency-Key's id, so the same key sent
        // with another body is refused even once the first answer has left the replay store. Null for older records
        // and for requests without a key.
        """
        ALTER TABLE usage_records ADD COLUMN request_hash TEXT;
        """,
    ];

    /// <summary>The schema version this build writes.</summary>
    public static int Latest => Steps.Length;

    /// <summary>Applies every step past the file's version. Throws when the file is newer than this build.</summary>
    public static void Apply(SqliteConnection connection, string path)
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        var version = Convert.ToInt32(Scalar(connection, transaction, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > Latest)
        {
            throw new InvalidDataException($"{path}: ledger schema version {version} is newer than this build's {Latest}; upgrade Marginal");
        }
        for (var step = version; step < Latest; step++)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Steps[step] + $";\nPRAGMA user_version = {step + 1};";
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
