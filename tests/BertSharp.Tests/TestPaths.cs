namespace BertSharp.Tests;

public static class TestPaths
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string TinyBert => Path.Combine(Fixtures, "tiny-hf-bert");

    public static string TempDir(string name = "t")
    {
        var d = Path.Combine(Path.GetTempPath(), "bertsharp-tests", $"{name}-{Guid.NewGuid():N}");
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
