using System.IO.Compression;
using System.Security.Cryptography;

namespace BertSharp.Data;

/// <summary>How a missing dataset is fetched. The defaults download from the official source and check the
/// published checksums; tests inject a local URL and their own checksums.</summary>
public sealed record DatasetDownloadOptions
{
    /// <summary>False: a missing dataset is an error at once (offline use).</summary>
    public bool AllowDownload { get; init; } = true;

    /// <summary>The archive's URL, or a base URL that the archive's file name is appended to (any URL not
    /// ending in <c>.zip</c>). Null: the dataset's environment variable (<see cref="WikiText2.UrlEnvVar"/>),
    /// else the official URL and its mirror.</summary>
    public string? Url { get; init; }

    /// <summary>Expected SHA-256 (hex) of each extracted file, by file name. Null: the published values
    /// (<see cref="WikiText2.Sha256"/>). A file not in the table is not checked.</summary>
    public IReadOnlyDictionary<string, string>? ExpectedSha256 { get; init; }

    /// <summary>Receives download progress (e.g. a <see cref="DownloadProgressBar"/>), on the downloading thread.</summary>
    public IProgress<DownloadProgress>? Progress { get; init; }

    /// <summary>The client to use; null: a shared one.</summary>
    public HttpClient? HttpClient { get; init; }

    /// <summary>Give up on a URL after this long without data (default 60 s).</summary>
    public TimeSpan? StallTimeout { get; init; }
}

/// <summary>
/// WikiText-2 (v1, tokenized release; Merity et al. 2016, CC BY-SA): finds <c>wikitext-2/wiki.{split}.tokens</c>
/// or <c>.tokens.gz</c> in the data folder (<see cref="DatasetCache.ResolveDataDir(string?)"/>), downloading the
/// official <c>wikitext-2-v1.zip</c> when a split is missing: to a temp file with progress, then each missing
/// file is extracted to a temp file, its SHA-256 checked against the published value, and renamed into place
/// (atomic; a mismatch deletes it and is an error). Read the files with <see cref="CorpusReader.ReadWikiText(string, CorpusReaderOptions?)"/>.
/// </summary>
public static class WikiText2
{
    public const string FolderName = "wikitext-2";
    public const string ArchiveName = "wikitext-2-v1.zip";

    /// <summary>Overrides the download URL (an archive URL, or a base URL the archive name is appended to).</summary>
    public const string UrlEnvVar = "BERTSHARP_WIKITEXT2_URL";

    /// <summary>The official archive, then its mirror.</summary>
    public static IReadOnlyList<string> OfficialUrls { get; } =
    [
        "https://wikitext.smerity.com/wikitext-2-v1.zip",
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
    ];

    public static IReadOnlyList<string> Splits { get; } = ["train", "valid", "test"];

    /// <summary>Published SHA-256 of the uncompressed files, by file name.</summary>
    public static IReadOnlyDictionary<string, string> Sha256 { get; } = new Dictionary<string, string>
    {
        ["wiki.train.tokens"] = "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
        ["wiki.valid.tokens"] = "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        ["wiki.test.tokens"] = "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
    };

    /// <summary><c>wiki.{split}.tokens</c>; <paramref name="split"/> is train, valid (or validation/dev) or test.</summary>
    public static string FileName(string split) => $"wiki.{NormalizeSplit(split)}.tokens";

    /// <summary>The WikiText-2 folder in a data folder (<paramref name="dataDir"/> null: the resolved default).</summary>
    public static string Folder(string? dataDir) => Path.Combine(DatasetCache.ResolveDataDir(dataDir), FolderName);

    /// <summary>The path of the split's file (plain or <c>.gz</c>), or null when it is not there. Never downloads.</summary>
    public static string? TryLocate(string? dataDir, string split) => DatasetCache.FindFile(Folder(dataDir), FileName(split));

    /// <summary>The path of the split's file (plain or <c>.gz</c>), downloading the dataset first when it is
    /// missing. Errors (offline, checksum) are one-line <see cref="BertSharpException"/>s that say which files
    /// to put where.</summary>
    public static string Locate(string? dataDir, string split, DatasetDownloadOptions? options = null) =>
        LocateAsync(dataDir, split, options).GetAwaiter().GetResult();

    /// <inheritdoc cref="Locate"/>
    public static async Task<string> LocateAsync(string? dataDir, string split, DatasetDownloadOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        string name = FileName(split);
        string folder = Folder(dataDir);
        if (DatasetCache.FindFile(folder, name) is { } found) return found;
        await DownloadAsync(dataDir, options, cancellationToken, requested: name).ConfigureAwait(false);
        return DatasetCache.FindFile(folder, name)
            ?? throw new BertSharpException($"{Path.Combine(folder, name)}: missing after download; {PlaceByHand(folder)}");
    }

    /// <summary>Downloads the archive and installs every split that is missing (neither plain nor <c>.gz</c>
    /// present); does nothing when none is.</summary>
    public static Task DownloadAsync(string? dataDir, DatasetDownloadOptions? options = null, CancellationToken cancellationToken = default) =>
        DownloadAsync(dataDir, options, cancellationToken, requested: null);

    static async Task DownloadAsync(string? dataDir, DatasetDownloadOptions? options, CancellationToken cancellationToken, string? requested)
    {
        options ??= new DatasetDownloadOptions();
        string folder = Folder(dataDir);
        var missing = Splits.Select(s => FileName(s)).Where(n => DatasetCache.FindFile(folder, n) is null).ToList();
        if (missing.Count == 0) return;
        string what = requested ?? string.Join(", ", missing);
        if (!options.AllowDownload)
            throw new BertSharpException($"{Path.Combine(folder, requested ?? missing[0])}: not found and downloads are off; {PlaceByHand(folder)}");

        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BertSharpException($"{folder}: cannot create the dataset folder ({TextLineReader.OneLine(e.Message)}); {PlaceByHand(folder)}", e);
        }

        var client = options.HttpClient ?? DatasetCache.SharedHttpClient;
        string zipPath = Path.Combine(folder, $".{ArchiveName}.{Guid.NewGuid():N}.part");
        var temps = new List<string>();
        try
        {
            string? used = null;
            var failures = new List<string>();
            foreach (var url in ResolveUrls(options.Url, Environment.GetEnvironmentVariable))
            {
                try
                {
                    await DatasetCache.DownloadAsync(client, url, zipPath, options.Progress, options.StallTimeout, cancellationToken).ConfigureAwait(false);
                    used = url;
                    break;
                }
                catch (DownloadException e)
                {
                    failures.Add($"{url}: {e.Message}");
                }
            }
            if (used is null)
                throw new BertSharpException(
                    $"WikiText-2 {what} not found in {folder}{Path.DirectorySeparatorChar} and the download failed ({string.Join("; ", failures)}); {PlaceByHand(folder)}");

            // Extract and check every missing file before installing any, so a bad archive installs nothing.
            var ready = new List<(string Temp, string Final)>();
            using (var zip = OpenZip(zipPath, used))
            {
                foreach (var name in missing)
                {
                    var entry = zip.GetEntry($"{FolderName}/{name}") ?? zip.Entries.FirstOrDefault(e => e.Name == name)
                        ?? throw new BertSharpException($"{used}: the archive has no {FolderName}/{name}; {PlaceByHand(folder)}");
                    string temp = Path.Combine(folder, $".{name}.{Guid.NewGuid():N}.part");
                    temps.Add(temp);
                    string actual = await ExtractAsync(entry, temp, used, cancellationToken).ConfigureAwait(false);
                    var table = options.ExpectedSha256 ?? Sha256;
                    string final = Path.Combine(folder, name);
                    if (table.TryGetValue(name, out var expected) && !string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase))
                    {
                        DatasetCache.TryDelete(temp);
                        throw new BertSharpException(
                            $"{final}: SHA-256 mismatch after downloading {used} (expected {expected.ToLowerInvariant()}, got {actual}); the file was removed; try again, or {PlaceByHand(folder)}");
                    }
                    ready.Add((temp, final));
                }
            }
            foreach (var (temp, final) in ready)
                File.Move(temp, final, overwrite: true);   // a rename within one folder: atomic
        }
        finally
        {
            DatasetCache.TryDelete(zipPath);
            foreach (var temp in temps) DatasetCache.TryDelete(temp);
        }
    }

    static ZipArchive OpenZip(string path, string url)
    {
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new BertSharpException($"{url}: the download is not a valid zip archive ({TextLineReader.OneLine(e.Message)})", e);
        }
    }

    /// <summary>Extracts <paramref name="entry"/> to <paramref name="path"/>, returning its SHA-256.</summary>
    static async Task<string> ExtractAsync(ZipArchiveEntry entry, string path, string url, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            await using var source = entry.Open();
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (InvalidDataException e)
        {
            throw new BertSharpException($"{url}: corrupt zip entry {entry.FullName} ({TextLineReader.OneLine(e.Message)})", e);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Checks a WikiText-2 file (plain or <c>.gz</c>, by its name <c>wiki.{split}.tokens[.gz]</c>)
    /// against the published SHA-256 of the uncompressed file; a mismatch is an error.</summary>
    public static void Verify(string path, IReadOnlyDictionary<string, string>? expectedSha256 = null)
    {
        string name = Path.GetFileName(path);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) name = name[..^3];
        var table = expectedSha256 ?? Sha256;
        if (!table.TryGetValue(name, out var expected))
            throw new BertSharpException($"{path}: not a WikiText-2 file name (expected wiki.train.tokens, wiki.valid.tokens or wiki.test.tokens, optionally .gz)");
        string actual = DatasetCache.ComputeSha256(path);
        if (!string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase))
            throw new BertSharpException($"{path}: SHA-256 mismatch (expected {expected.ToLowerInvariant()}, got {actual}); the file is corrupt or not the v1 tokenized release");
    }

    internal static string PlaceByHand(string folder) =>
        $"put wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (optionally .gz) into {folder}{Path.DirectorySeparatorChar}, or set {DatasetCache.DataDirEnvVar}";

    internal static string NormalizeSplit(string split) => split.Trim().ToLowerInvariant() switch
    {
        "train" => "train",
        "valid" or "validation" or "dev" => "valid",
        "test" => "test",
        _ => throw new BertSharpException($"unknown WikiText-2 split '{split}' (expected train, valid or test)"),
    };

    /// <summary>The URLs to try: the option, else the environment variable, else the official ones. A URL
    /// not ending in <c>.zip</c> is a base the archive name is appended to.</summary>
    internal static IReadOnlyList<string> ResolveUrls(string? url, Func<string, string?> getEnv)
    {
        if (string.IsNullOrWhiteSpace(url)) url = getEnv(UrlEnvVar);
        if (string.IsNullOrWhiteSpace(url)) return OfficialUrls;
        url = url.Trim();
        string pathPart = url.Split('?', '#')[0];
        if (!pathPart.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
            url = url.TrimEnd('/') + "/" + ArchiveName;
        return [url];
    }
}
