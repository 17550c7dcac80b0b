using System.CommandLine;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal serve</c>: runs the gateway until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c")
        {
            Description = "Configuration file (YAML). Default: $MARGINAL_CONFIG, else ./marginal.yaml if present, else built-in defaults.",
        };
        var urls = new Option<string?>("--urls")
        {
            Description = "Addresses to listen on, e.g. http://127.0.0.1:8080. Default: server.urls from the config (loopback).",
        };
        var command = new Command("serve", "Run the OpenAI-compatible gateway.") { config, urls };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = ResolveConfigPath(parse.GetValue(config));
            MarginalConfig loaded;
            try
            {
                loaded = path is null ? new MarginalConfig() : ConfigLoader.Load(path);
                await using var app = MarginalServer.Create(loaded, path, parse.GetValue(urls), minimumLogLevel: LogLevel.Information);
                await app.StartAsync(cancellationToken);
                await Console.Out.WriteLineAsync($"marginal: serving {string.Join(", ", app.Urls)} with {loaded.Models.Count} models from {path ?? "built-in defaults"}");
                await app.WaitForShutdownAsync(cancellationToken);
                return 0;
            }
            catch (ConfigException ex)
            {
                await Console.Error.WriteLineAsync(ex.Message);
                return MarginalCommand.BadInput;
            }
            catch (IOException ex)
            {
                await Console.Error.WriteLineAsync($"marginal serve: cannot listen: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private static string? ResolveConfigPath(FileInfo? option)
    {
        if (option is not null)
        {
            return option.FullName;
        }
        if (Environment.GetEnvironmentVariable("MARGINAL_CONFIG") is { Length: > 0 } env)
        {
            return env;
        }
        return File.Exists("marginal.yaml") ? Path.GetFullPath("marginal.yaml") : null;
    }
}
