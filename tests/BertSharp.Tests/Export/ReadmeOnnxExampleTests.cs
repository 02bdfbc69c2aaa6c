namespace BertSharp.Tests.Export;

/// <summary>The README's ONNX Runtime example is bench/OnnxExample/Program.cs, which bench/onnx-example.sh compiles and
/// runs (building a project inside the test run would take a minute); this keeps the two the same.</summary>
public class ReadmeOnnxExampleTests
{
    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BertSharp.sln"))) return dir.FullName;
        throw new InvalidOperationException("no BertSharp.sln above the test assembly");
    }

    [Fact]
    public void TheReadmeShowsTheCompiledExampleWhole()
    {
        string root = RepoRoot();
        string program = File.ReadAllText(Path.Combine(root, "bench", "OnnxExample", "Program.cs")).ReplaceLineEndings("\n");
        string readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        Assert.Contains("```csharp\n" + program + "```\n", readme);
        Assert.True(program.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 30, "the example should stay under 30 lines");
    }
}
