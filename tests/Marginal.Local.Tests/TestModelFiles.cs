using Marginal.Local.TestModels;

namespace Marginal.Local.Tests;

/// <summary>
/// The tiny test model, written once per test run into a temporary folder: with the Llama chat template it ships
/// (<see cref="Path"/>) and without one (<see cref="WithoutTemplatePath"/>). Deleted when the run ends.
/// </summary>
public sealed class TestModelFiles : IDisposable
{
    private readonly DirectoryInfo _directory = System.IO.Directory.CreateTempSubdirectory("marginal-local-");

    public TestModelFiles()
    {
        Path = System.IO.Path.Combine(_directory.FullName, "tiny.gguf");
        WithoutTemplatePath = System.IO.Path.Combine(_directory.FullName, "tiny-no-template.gguf");
        TestModelWriter.Write(Path, TestModelShape.Tiny);
        TestModelWriter.Write(WithoutTemplatePath, TestModelShape.Tiny, chatTemplate: null);
    }

    public string Path { get; }

    public string WithoutTemplatePath { get; }

    public string Directory => _directory.FullName;

    public void Dispose() => _directory.Delete(recursive: true);
}

/// <summary>
/// Every test here shares the model files and runs one at a time: they measure slots and queues of models that
/// decode on the same two cores, and running them side by side would make each other's timing.
/// </summary>
[CollectionDefinition(Name)]
public sealed class LocalModelCollection : ICollectionFixture<TestModelFiles>
{
    public const string Name = "local model";
}
