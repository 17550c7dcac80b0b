using System.CommandLine;
using Marginal.Cli.Commands;

namespace Marginal.Cli;

/// <summary>The <c>marginal</c> command tree. Exit codes: 0 done, 1 failed while running, 2 bad input (config, arguments).</summary>
public static class MarginalCommand
{
    public const int BadInput = 2;

    public static RootCommand Create() => new("Marginal: an LLM gateway that pulls every lever lowering the cost of a token, and records what each request cost.")
    {
        ServeCommand.Create(),
        KeysCommand.Create(),
        ReportCommand.Create(),
        PlanCommand.Create(),
        ModelCommand.Create(),
        ModelsCommand.Create(),
        DemoCommand.Create(),
        RouterCommand.Create(),
        InvoiceCommand.Create(),
        CreditsCommand.Create(),
        AdjustCommand.Create(),
        CacheCommand.Create(),
    };
}
