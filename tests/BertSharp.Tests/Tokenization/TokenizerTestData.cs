namespace BertSharp.Tests.Tokenization;

/// <summary>
/// Where the tokenizer tests find their files. Fixtures live in the test output folder (fixtures/); the real
/// bert-base-uncased vocab and WikiText are datasets, not committed: they are found through BERTSHARP_DATA_DIR,
/// else ../shared/data beside the repository root, else the tests that need them are skipped.
/// </summary>
internal static class TokenizerTestData
{
    public const string DataDirVariable = "BERTSHARP_DATA_DIR";

    public static string FixturesDir => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string CasesPath => Path.Combine(FixturesDir, "tokenizer", "bert-base-uncased-cases.json");
    public static string TinyBertDir => Path.Combine(FixturesDir, "tiny-hf-bert");

    public static string? DataDir => BertSharp.Tests.Data.RealData.Dir;

    public static string? BertBaseUncasedVocab =>
        DataDir is null ? null : Path.Combine(DataDir, "vocab", "bert-base-uncased", "vocab.txt");

    public static string? SkipReasonFor(string relativePath)
    {
        if (DataDir is null) return $"test data {relativePath} not found: {BertSharp.Tests.Data.RealData.SkipReason(relativePath)}";
        string full = Path.Combine(DataDir, relativePath);
        return File.Exists(full) ? null : $"test data not found: {full} (from {DataDirVariable} or ../shared/data)";
    }
}

/// <summary>A [Fact] that reports itself skipped, with the reason, when a data file (relative to the data dir) is absent.</summary>
public sealed class DataFactAttribute : FactAttribute
{
    public DataFactAttribute(string relativePath)
    {
        Skip = TokenizerTestData.SkipReasonFor(relativePath);
    }
}

/// <summary>A [Theory] that reports itself skipped, with the reason, when a data file (relative to the data dir) is absent.</summary>
public sealed class DataTheoryAttribute : TheoryAttribute
{
    public DataTheoryAttribute(string relativePath)
    {
        Skip = TokenizerTestData.SkipReasonFor(relativePath);
    }
}
