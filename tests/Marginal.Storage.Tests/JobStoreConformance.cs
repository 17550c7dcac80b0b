using Marginal.Core.Deferral;

namespace Marginal.Storage.Tests;

/// <summary>What every deferred-job store (<see cref="IJobStore"/>) must do. SQLite and PostgreSQL run it.</summary>
public abstract class JobStoreConformance
{
    private static readonly DateTimeOffset Created = new(2026, 11, 28, 3, 0, 0, TimeSpan.Zero);

    /// <summary>Where a new, empty store lives (a file path, a database's connection string).</summary>
    protected abstract Task<string> CreateAsync();

    /// <summary>A store at <paramref name="location"/>, which the test disposes.</summary>
    protected abstract Task<IMarginalStore> OpenAsync(string location);

    private static DeferredJob Job(string id, string status = JobStatus.Queued) =>
        new(id, $"req_{id}", "acme", "key1", "gpt-test", status, Created, Created.AddHours(6), """{"model":"gpt-test","messages":[]}""");

    [Fact]
    public async Task SaveAsync_ThenReopen_JobIsFoundWithEveryFieldExact()
    {
        var location = await CreateAsync();
        var job = Job("job_1") with
        {
            Status = JobStatus.Completed, BatchId = "openai/batch_1", ResultJson = """{"object":"chat.completion"}""",
            Finished = Created.AddMinutes(5).AddTicks(7), // below a microsecond: dropped by the store
        };
        await using (var first = await OpenAsync(location))
        {
            await ((IJobStore)first).SaveAsync(job);
        }

        await using var second = await OpenAsync(location);
        var found = await ((IJobStore)second).FindJobAsync("job_1");

        Assert.Equal(job with { Finished = Created.AddMinutes(5) }, found);
    }

    [Fact]
    public async Task ReadActiveJobsAsync_MixedStatuses_ReturnsQueuedAndRunningOldestFirst()
    {
        await using var opened = await OpenAsync(await CreateAsync());
        var store = (IJobStore)opened;
        await store.SaveAsync(Job("job_b") with { Created = Created.AddSeconds(1) });
        await store.SaveAsync(Job("job_a", JobStatus.Running));
        await store.SaveAsync(Job("job_c", JobStatus.Expired));
        await store.SaveAsync(Job("job_d"));
        await store.SaveAsync(Job("job_d", JobStatus.Failed));

        var active = await store.ReadActiveJobsAsync();

        Assert.Equal(["job_a", "job_b"], active.Select(j => j.Id));
        Assert.Null(await store.FindJobAsync("job_nope"));
    }
}
