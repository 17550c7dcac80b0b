using System.CommandLine;
using Marginal.Gateway.Configuration;

namespace Marginal.Cli.Commands;

/// <summary>The <c>--config</c> option every command shares, and how a command finds the file and the ledger.</summary>
internal static class ConfigFile
{
    public static Option<FileInfo?> Option() => new("--config", "-c")
    {
        Description = "Configuration file (YAML). Default: $MARGINAL_CONFIG, else ./marginal.yaml if present, else built-in defaults.",
    };

    /// <summary>The file to read: the option, else <c>$MARGINAL_CONFIG</c>, else <c>./marginal.yaml</c> when present; null: built-in defaults.</summary>
    public static string? Resolve(FileInfo? option)
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

    /// <summary>The loaded config (throws <see cref="ConfigException"/> on a bad file) and where it came from.</summary>
    public static (MarginalConfig Config, string? Path) Load(FileInfo? option)
    {
        var path = Resolve(option);
        return (path is null ? new MarginalConfig() : ConfigLoader.Load(path), path);
    }
}
