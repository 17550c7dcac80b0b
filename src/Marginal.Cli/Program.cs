using System.CommandLine;
using Marginal.Cli;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Piped or captured output has no terminal width; Spectre would assume 80 columns and wrap every table cell.
    AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 200);
}
return await MarginalCommand.Create().Parse(args).InvokeAsync();
