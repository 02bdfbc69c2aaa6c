namespace BertSharp.Tests.Data;

/// <summary>
/// Finds the real datasets (see /work/shared/data/README.md): the folder in BERTSHARP_DATA_DIR, else
/// <c>../shared/data</c> next to the repository root when it exists.
/// </summary>
public static class RealData
{
    public static string? Dir { get; } = Find();

    public static string? SkipReason(string subfolder)
    {
        if (Dir is null)
            return "real datasets not found: set BERTSHARP_DATA_DIR (no ../shared/data next to the repository root either)";
        if (!Directory.Exists(Path.Combine(Dir, subfolder)))
            return $"real datasets: {Path.Combine(Dir, subfolder)} does not exist";
        return null;
    }

    static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable("BERTSHARP_DATA_DIR");
        if (!string.IsNullOrWhiteSpace(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "BertSharp.sln"))) continue;
            string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
            return Directory.Exists(shared) ? shared : null;
        }
        return null;
    }
}

/// <summary>A fact that needs a real dataset sub-folder (e.g. "wikitext-2"); skipped, with the reason, when it
/// cannot be found.</summary>
public sealed class RealDataFactAttribute : FactAttribute
{
    public RealDataFactAttribute(string subfolder)
    {
        if (RealData.SkipReason(subfolder) is { } reason) Skip = reason;
    }
}
