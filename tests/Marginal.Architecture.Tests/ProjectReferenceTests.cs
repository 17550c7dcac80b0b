using System.Xml.Linq;

namespace Marginal.Architecture.Tests;

/// <summary>
/// The references allowed between the projects under src/, written once here and drawn in docs/architecture.md
/// ("Projects"): a project may reference only those listed for it. A new project fails until it is listed.
/// </summary>
public sealed class ProjectReferenceTests
{
    // Keep in step with the diagram in docs/architecture.md, "Projects".
    public static readonly IReadOnlyDictionary<string, string[]> Allowed = new Dictionary<string, string[]>
    {
        ["Marginal.Core"] = [],
        ["Marginal.Economics"] = ["Marginal.Core"],
        ["Marginal.Planner"] = ["Marginal.Core"],
        ["Marginal.Storage"] = ["Marginal.Core"],
        ["Marginal.Local"] = ["Marginal.Core"],
        ["Marginal.Gateway"] = ["Marginal.Core", "Marginal.Economics", "Marginal.Local"],
        ["Marginal.Lab"] = ["Marginal.Gateway"],
        ["Marginal.Server"] = ["Marginal.Gateway", "Marginal.Storage", "Marginal.Economics"],
        ["Marginal.Cli"] = ["Marginal.Server", "Marginal.Storage", "Marginal.Economics", "Marginal.Planner", "Marginal.Local", "Marginal.Lab"],
    };

    [Fact]
    public void SourceProjects_ReferenceOnlyAllowedProjects()
    {
        var faults = new List<string>();
        foreach (var (project, references) in SourceProjects())
        {
            if (!Allowed.TryGetValue(project, out var allowed))
            {
                faults.Add($"{project} is not listed: add it and the projects it may reference to ProjectReferenceTests.Allowed and docs/architecture.md");
                continue;
            }
            faults.AddRange(references.Where(r => !allowed.Contains(r)).Select(r => $"{project} references {r}, which it may not (allowed: {string.Join(", ", allowed)})"));
        }
        Assert.True(faults.Count == 0, string.Join(Environment.NewLine, faults));
    }

    [Fact]
    public void AllowedGraph_ListsEverySourceProject()
    {
        var projects = SourceProjects().Select(p => p.Project).Order(StringComparer.Ordinal);
        Assert.Equal(Allowed.Keys.Order(StringComparer.Ordinal), projects);
    }

    // The lab project (offline evaluation and training) stays off the data plane: only the CLI references it in src.
    [Fact]
    public void LabProject_ReferencedOnlyByCli()
    {
        var users = SourceProjects().Where(p => p.References.Contains("Marginal.Lab")).Select(p => p.Project);
        Assert.Equal(["Marginal.Cli"], users);
    }

    /// <summary>Each src/*/*.csproj with the names of the projects it references.</summary>
    internal static IEnumerable<(string Project, string[] References)> SourceProjects() =>
        Directory.GetDirectories(Path.Combine(Repository.Root, "src"))
            .SelectMany(d => Directory.GetFiles(d, "*.csproj"))
            .Order(StringComparer.Ordinal)
            .Select(file => (
                Path.GetFileNameWithoutExtension(file),
                XDocument.Load(file).Descendants("ProjectReference")
                    .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/')))
                    .ToArray()));
}

internal static class Repository
{
    /// <summary>The folder holding Marginal.slnx, found upwards from the test's output folder.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Marginal.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Marginal.slnx above {AppContext.BaseDirectory}");
    }
}
