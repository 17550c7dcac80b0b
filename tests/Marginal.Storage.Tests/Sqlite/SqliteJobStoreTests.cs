using Marginal.Core.Deferral;
using Marginal.Storage.Sqlite;

namespace Marginal.Storage.Tests.Sqlite;

public sealed class SqliteJobStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-jobs-").FullName;
    private static readonly DateTimeOffset Created = new(2026, 11, 28, 3, 0, 0, TimeSpan.Zero);

    private static DeferredJob Job(string id, string status = JobStatus.Queued) =>
        new(id, $"req_{id}", "acme", "key1", "gpt-test", status, Created, Created.AddHours(6), """{"model":"gpt-test","messages":[]}""");

    [Fact]
    public async Task SaveAsync_ThenReopen_JobIsFoundWithEveryFieldExact()
    {
        var path = Path.Combine(_directory, "jobs.db");
        var job = Job("job_1") with
        {
            Status = JobStatus.Completed, BatchId = "openai/batch_1", ResultJson = """{"object":"chat.completion"}""",
            Finished = Created.AddMinutes(5).AddTicks(7), // below a microsecond: dropped by the store
        };
        await using (var first = SqliteStore.Open(path))
        {
            await first.SaveAsync(job);
        }

        await using var second = SqliteStore.Open(path);
        var found = await second.FindJobAsync("job_1");

        Assert.Equal(job with { Finished = Created.AddMinutes(5) }, found);
    }

    [Fact]
    public async Task ReadActiveJobsAsync_MixedStatuses_ReturnsQueuedAndRunningOldestFirst()
    {
        await using var store = SqliteStore.Open(Path.Combine(_directory, "jobs.db"));
        await store.SaveAsync(Job("job_b") with { Created = Created.AddSeconds(1) });
        await store.SaveAsync(Job("job_a", JobStatus.Running));
        await store.SaveAsync(Job("job_c", JobStatus.Expired));
        await store.SaveAsync(Job("job_d"));
        await store.SaveAsync(Job("job_d", JobStatus.Failed));

        var active = await store.ReadActiveJobsAsync();

        Assert.Equal(["job_a", "job_b"], active.Select(j => j.Id));
        Assert.Null(await store.FindJobAsync("job_nope"));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
