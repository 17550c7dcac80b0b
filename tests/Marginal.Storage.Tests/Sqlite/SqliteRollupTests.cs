using Marginal.Storage.Sqlite;

namespace Marginal.Storage.Tests.Sqlite;

public sealed class SqliteRollupTests : UsageRollupConformance, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-rollup-").FullName;

    protected override Task<string> CreateAsync() => Task.FromResult(Path.Combine(_directory, $"{Guid.NewGuid():N}.db"));

    protected override Task<IMarginalStore> OpenAsync(string location) => Task.FromResult<IMarginalStore>(SqliteStore.Open(location));

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
