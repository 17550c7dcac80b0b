namespace Marginal.Cluster.Tests;

/// <summary>
/// Two nodes over a PostgreSQL and a Redis of their own, which the tests stop and restart. An in-flight idempotency
/// marker lives 3 s unless renewed, so a dead node's key frees within a test's patience.
/// </summary>
public sealed class FaultClusterFixture : ClusterFixture
{
    public FaultClusterFixture()
        : base(ownServices: true, nodeCount: 2, extraYaml: "idempotency: { in_flight_ttl: 3s }")
    {
    }
}
