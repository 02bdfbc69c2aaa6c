namespace BertSharp.Tests.Data;

/// <summary>
/// Finds the real datasets (see /work/shared/data/README.md): the folder in BERTSHARP_DATA_DIR, else
/// <c>../shared/data</c> next to the repository root when it exists.
/// </summary>
public static class RealData
{
    static readonly (string? Dir, string? Reason) Found = Find();

    /// <summary>The real data folder, or null.</summary>
    public static string? Dir => Found.Dir;

    /// <summary>Why tests needing <paramref name="subfolder"/> are skipped, or null when it is there.</summary>
    public static string? SkipReason(string subfolder)
    {
        if (Found.Dir is null) return Found.Reason;
        string sub = Path.Combine(Found.Dir, subfolder);
        return Directory.Exists(sub) ? null : $"real dataset folder {sub} does not exist";
    }

    static (string?, string?) Find()
    {
        string? env = Environment.GetEnvironmentVariable("BERTSHARP_DATA_DIR");
        if (!string.IsNullOrWhiteSpace(env))
            return Directory.Exists(env) ? (Path.GetFullPath(env), null) : (null, $"BERTSHARP_DATA_DIR={env} does not exist");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "BertSharp.sln"))) continue;
            string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
            if (Directory.Exists(shared)) return (shared, null);
            break;
        }
        return (null, "real datasets not found: BERTSHARP_DATA_DIR is unset and there is no ../shared/data next to the repository root");
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
