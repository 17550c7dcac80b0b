using System.CommandLine;
using Marginal.Cli;

return await MarginalCommand.Create().Parse(args).InvokeAsync();
