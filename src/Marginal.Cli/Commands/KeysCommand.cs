using System.CommandLine;
using Marginal.Core.Tenancy;
using Marginal.Gateway.Configuration;
using Marginal.Server.Cluster;
using Marginal.Storage;
using Marginal.Storage.Opening;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal keys create|list|revoke</c>: virtual keys in the store the config names (the server need not run).</summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var config = ConfigFile.Option();
        var tenant = new Option<string>("--tenant") { Description = "Tenant the key bills to.", Required = true };
        var expires = new Option<string?>("--expires") { Description = $"When the key stops working: {CliTime.Allowed.Replace("an age", "a duration from now", StringComparison.Ordinal)}." };
        var models = new Option<string?>("--models") { Description = "Comma-separated models the key may call. Default: every model." };
        var create = new Command("create", "Make a key. Its text is printed once and only a salted hash is stored.") { config, tenant, expires, models };
        create.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config), async (store, _) =>
        {
            var now = TimeProvider.System.GetUtcNow();
            var name = parse.GetValue(tenant)!;
            if (!TenantNames.IsValid(name))
            {
                // The name is not echoed: it may hold control or bidirectional characters, or be very long.
                throw new ConfigException($"marginal keys create: --tenant: not a tenant name (allowed: {TenantNames.Rule})");
            }
            DateTimeOffset? until = null;
            if (parse.GetValue(expires) is { } text)
            {
                // A span counts forward here: --expires 30d is thirty days from now.
                until = CliTime.TryParseAge(text, out var span) ? now + span
                    : CliTime.TryParse(text, now, out var at) ? at
                    : throw new ConfigException($"marginal keys create: --expires: '{text}' is not a time (allowed: {CliTime.Allowed})");
                if (until <= now)
                {
                    throw new ConfigException($"marginal keys create: --expires: '{text}' is not in the future (a key created expired could never be used)");
                }
            }
            var allowed = parse.GetValue(models)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (parse.GetValue(models) is not null && allowed.Length == 0)
            {
                // Fail closed: an empty list is a mistake, never "every model" (leave --models out for that).
                throw new ConfigException("marginal keys create: --models: give at least one model name, comma-separated (leave --models out for every model)");
            }
            var (key, keyText) = KeyIssuer.Issue(name, now, until, allowed);
            await store.AddKeyAsync(key, cancellationToken);
            Console.WriteLine(keyText);
            await Console.Error.WriteLineAsync($"key {key.Id} for tenant {key.Tenant}; store the text above now, it is not shown again");
        }));

        var list = new Command("list", "List keys (never their secrets).") { config };
        list.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config), async (store, _) =>
        {
            var now = TimeProvider.System.GetUtcNow();
            var table = new Table().AddColumns("id", "tenant", "created", "expires", "state", "models");
            foreach (var key in await store.ListKeysAsync(cancellationToken))
            {
                var state = key.Revoked is not null ? "revoked" : key.IsLive(now) ? "live" : "expired";
                table.AddRow(key.Id, Markup.Escape(key.Tenant), $"{key.Created:u}", key.Expires is { } e ? $"{e:u}" : "never", state,
                    key.Models.Count == 0 ? "all" : Markup.Escape(string.Join(", ", key.Models)));
            }
            AnsiConsole.Write(table);
        }));

        var id = new Argument<string>("id") { Description = "The key's id (the 12 hex digits after mk-)." };
        var revoke = new Command("revoke", "Revoke a key; a running server refuses it within seconds, every node of a cluster sharing Redis at once.") { config, id };
        revoke.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config), async (store, loaded) =>
        {
            var keyId = parse.GetValue(id)!;
            if (!await store.RevokeKeyAsync(keyId, TimeProvider.System.GetUtcNow(), cancellationToken))
            {
                throw new ConfigException($"marginal keys revoke: id: no key '{keyId}' (see marginal keys list)");
            }
            Console.WriteLine($"revoked {keyId}");
            // A cluster's nodes hear it through Redis and refuse the key at once; otherwise within their key cache time.
            if (loaded.Redis is { } redis && !await ClusterNotices.KeyRevokedAsync(redis, keyId))
            {
                Console.Error.WriteLine($"warning: Redis could not be reached; running nodes refuse {keyId} within their key cache time (5 s)");
            }
        }));

        return new Command("keys", "Manage virtual keys: each request is attributed to its key's tenant.") { create, list, revoke };
    }

    private static async Task<int> RunAsync(FileInfo? configOption, Func<IKeyStore, MarginalConfig, Task> action)
    {
        try
        {
            var (config, _) = ConfigFile.Load(configOption);
            await using var store = await MarginalStores.OpenAsync(config.Storage);
            await action(store, config);
            return 0;
        }
        catch (Exception error) when (error is ConfigException or StoreOpenException)
        {
            await Console.Error.WriteLineAsync(error.Message);
            return MarginalCommand.BadInput;
        }
    }
}
