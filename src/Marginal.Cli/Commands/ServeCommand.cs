using Marginal.Server.Composition;
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
        var config = ConfigFile.Option();
        var urls = new Option<string?>("--urls")
        {
            Description = "Addresses to listen on, e.g. http://127.0.0.1:8080. Default: server.urls from the config (loopback).",
        };
        var command = new Command("serve", "Run the OpenAI-compatible gateway.") { config, urls };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var (loaded, path) = ConfigFile.Load(parse.GetValue(config));
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
}
