using Marginal.Storage.Postgres;
using Marginal.Testing.Services;

namespace Marginal.Storage.Tests.Postgres;

public sealed class PostgresJobStoreTests : JobStoreConformance
{
    protected override async Task<string> CreateAsync() => await (await PostgresServer.Shared).CreateDatabaseAsync();

    protected override async Task<IMarginalStore> OpenAsync(string location) => await PostgresStore.OpenAsync(location);
}
