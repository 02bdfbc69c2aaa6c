namespace BertSharp.Tests;

public static class TestPaths
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string TinyBert => Path.Combine(Fixtures, "tiny-hf-bert");

    /// <summary>This test run's scratch root: every temp folder lives under it, and it is deleted when the test process
    /// exits (runs used to leave their folders behind: gigabytes of /tmp after a few hundred runs).</summary>
    public static string RunRoot => runRoot.Value;

    private static readonly Lazy<string> runRoot = new(() =>
    {
        var d = Path.Combine(Path.GetTempPath(), "bertsharp-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(d, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { } };
        return d;
    });

    public static string TempDir(string name = "t")
    {
        var d = Path.Combine(RunRoot, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Copies a fixture folder to a temp dir (fixtures are read-only inputs; tests that modify files work on a copy).</summary>
    public static string CopyOf(string dir)
    {
        var dst = TempDir(Path.GetFileName(dir));
        foreach (var f in Directory.GetFiles(dir)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }
}
