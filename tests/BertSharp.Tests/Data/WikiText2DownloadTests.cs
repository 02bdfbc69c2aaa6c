using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using BertSharp.Data;

namespace BertSharp.Tests.Data;

/// <summary>The download path against a local HTTP server serving a small zip with WikiText-2's layout; the
/// checksums are the small files', injected. No external network.</summary>
public class WikiText2DownloadTests
{
    static readonly char Sep = Path.DirectorySeparatorChar;

    static readonly Dictionary<string, string> Contents = new()
    {
        ["wiki.train.tokens"] = " \n = Train Article = \n \n Some training text . More text . \n",
        ["wiki.valid.tokens"] = " \n = Valid Article = \n \n Validation text . \n",
        ["wiki.test.tokens"] = " \n = Test Article = \n \n Test text . \n",
    };

    static Dictionary<string, string> Hashes() => Contents.ToDictionary(
        kv => kv.Key, kv => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(kv.Value))));

    static byte[] Zip(IEnumerable<KeyValuePair<string, string>> files, string folder = "wikitext-2")
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry(folder + "/");
            foreach (var (name, text) in files)
            {
                using var w = new StreamWriter(zip.CreateEntry($"{folder}{Sep}{name}").Open(), new UTF8Encoding(false));
                w.Write(text);
            }
        }
        return ms.ToArray();
    }

    static DatasetDownloadOptions Options(string url, IReadOnlyDictionary<string, string>? hashes = null, IProgress<DownloadProgress>? progress = null) =>
        new() { Url = url, ExpectedSha256 = hashes ?? Hashes(), Progress = progress, StallTimeout = TimeSpan.FromSeconds(20) };

    static void AssertNoTempFiles(string folder)
    {
        if (Directory.Exists(folder))
            Assert.Empty(Directory.GetFiles(folder, "*.part"));
    }

    [Fact]
    public async Task DownloadsExtractsVerifiesAndInstalls()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        server.Serve("/wikitext-2-v1.zip", Zip(Contents));
        var reports = new List<DownloadProgress>();
        var progress = new SyncProgress(reports.Add);

        // A base URL: the archive name is appended.
        string path = await WikiText2.LocateAsync(dir.Path, "valid", Options(server.BaseUrl + "/", progress: progress));

        string folder = Path.Combine(dir.Path, "wikitext-2");
        Assert.Equal(Path.Combine(folder, "wiki.valid.tokens"), path);
        foreach (var (name, text) in Contents)
            Assert.Equal(text, File.ReadAllText(Path.Combine(folder, name)));
        AssertNoTempFiles(folder);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.part"));

        Assert.NotEmpty(reports);
        Assert.True(reports[^1].Completed);
        Assert.Equal(reports[^1].TotalBytes, reports[^1].BytesReceived);
        Assert.Equal(100.0, reports[^1].Percent);

        // Present now: no second request, for any split.
        int requests = server.Requests;
        Assert.Equal(Path.Combine(folder, "wiki.train.tokens"), WikiText2.Locate(dir.Path, "train", Options(server.BaseUrl)));
        Assert.Equal(requests, server.Requests);

        // And the reader reads it.
        var doc = CorpusReader.Read(path).Single();
        Assert.Equal(new[] { "Validation text ." }, doc.Sentences);
    }

    [Fact]
    public void InstallsOnlyMissingFilesAndKeepsAGzippedCopy()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        server.Serve("/archive/wikitext-2-v1.zip", Zip(Contents));
        string gz = dir.Write("wikitext-2/wiki.train.tokens.gz", Contents["wiki.train.tokens"]);

        Assert.Equal(gz, WikiText2.TryLocate(dir.Path, "train"));
        Assert.Null(WikiText2.TryLocate(dir.Path, "test"));
        string test = WikiText2.Locate(dir.Path, "test", Options(server.BaseUrl + "/archive/wikitext-2-v1.zip"));

        Assert.Equal(dir.File("wikitext-2/wiki.test.tokens"), test);
        Assert.False(File.Exists(dir.File("wikitext-2/wiki.train.tokens")));
        Assert.Equal(gz, WikiText2.TryLocate(dir.Path, "train"));
        Assert.Equal(dir.File("wikitext-2/wiki.valid.tokens"), WikiText2.TryLocate(dir.Path, "validation"));
        WikiText2.Verify(gz, Hashes());
    }

    [Fact]
    public void ChecksumMismatchRemovesTheFileAndInstallsNothing()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        var tampered = new Dictionary<string, string>(Contents) { ["wiki.valid.tokens"] = " \n = Valid Article = \n Tampered . \n" };
        server.Serve("/wikitext-2-v1.zip", Zip(tampered));

        var e = Assert.Throws<BertSharpException>(() => WikiText2.Locate(dir.Path, "train", Options(server.BaseUrl)));

        string folder = Path.Combine(dir.Path, "wikitext-2");
        string valid = Path.Combine(folder, "wiki.valid.tokens");
        Assert.StartsWith($"{valid}: SHA-256 mismatch after downloading {server.BaseUrl}/wikitext-2-v1.zip (expected {Hashes()["wiki.valid.tokens"]}, got ", e.Message);
        Assert.Contains("the file was removed", e.Message);
        Assert.Contains($"put wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (optionally .gz) into {folder}{Sep}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFiles(folder));      // nothing installed, no temp files left
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void PublishedChecksumsRejectTheSmallFiles()
    {
        // Without injected hashes the real ones apply: the small test files must fail.
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        server.Serve("/wikitext-2-v1.zip", Zip(Contents));
        var e = Assert.Throws<BertSharpException>(() =>
            WikiText2.Locate(dir.Path, "test", new DatasetDownloadOptions { Url = server.BaseUrl }));
        Assert.Contains("SHA-256 mismatch", e.Message);
        Assert.Contains("(expected 9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f, got ", e.Message);
        Assert.Null(WikiText2.TryLocate(dir.Path, "test"));
    }

    [Fact]
    public void NotFoundOnTheServerIsAnOfflineErrorSayingWhereToPutFiles()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();   // serves nothing: 404

        var e = Assert.Throws<BertSharpException>(() => WikiText2.Locate(dir.Path, "valid", Options(server.BaseUrl)));

        string folder = Path.Combine(dir.Path, "wikitext-2");
        Assert.Equal(
            $"WikiText-2 wiki.valid.tokens not found in {folder}{Sep} and the download failed ({server.BaseUrl}/wikitext-2-v1.zip: HTTP 404 Not Found); " +
            $"put wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (optionally .gz) into {folder}{Sep}, or set BERTSHARP_DATA_DIR",
            e.Message);
        AssertNoTempFiles(folder);
    }

    [Fact]
    public void ConnectionRefusedIsAnOfflineErrorSayingWhereToPutFiles()
    {
        using var dir = new TempDir();
        string url = $"http://127.0.0.1:{LocalHttpServer.ClosedPort()}/wikitext-2-v1.zip";

        var e = Assert.Throws<BertSharpException>(() => WikiText2.Locate(dir.Path, "train", Options(url)));

        string folder = Path.Combine(dir.Path, "wikitext-2");
        Assert.StartsWith($"WikiText-2 wiki.train.tokens not found in {folder}{Sep} and the download failed ({url}: ", e.Message);
        Assert.EndsWith($"put wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (optionally .gz) into {folder}{Sep}, or set BERTSHARP_DATA_DIR", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        AssertNoTempFiles(folder);
    }

    [Fact]
    public void DownloadsOffIsAnImmediateError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<BertSharpException>(() =>
            WikiText2.Locate(dir.Path, "test", new DatasetDownloadOptions { AllowDownload = false }));
        string folder = Path.Combine(dir.Path, "wikitext-2");
        Assert.Equal($"{folder}{Sep}wiki.test.tokens: not found and downloads are off; " +
                     $"put wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (optionally .gz) into {folder}{Sep}, or set BERTSHARP_DATA_DIR", e.Message);
    }

    [Fact]
    public void AnArchiveWithoutTheFilesIsAnError()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        server.Serve("/wikitext-2-v1.zip", Zip(Contents.Where(kv => kv.Key != "wiki.test.tokens")));
        var e = Assert.Throws<BertSharpException>(() => WikiText2.Locate(dir.Path, "train", Options(server.BaseUrl)));
        Assert.StartsWith($"{server.BaseUrl}/wikitext-2-v1.zip: the archive has no wikitext-2/wiki.test.tokens", e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "wikitext-2")));
    }

    [Fact]
    public void NotAZipIsAnError()
    {
        using var dir = new TempDir();
        using var server = new LocalHttpServer();
        server.Serve("/wikitext-2-v1.zip", Encoding.ASCII.GetBytes("<html>captive portal</html>"));
        var e = Assert.Throws<BertSharpException>(() => WikiText2.Locate(dir.Path, "train", Options(server.BaseUrl)));
        Assert.StartsWith($"{server.BaseUrl}/wikitext-2-v1.zip: the download is not a valid zip archive", e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "wikitext-2")));
    }

    [Fact]
    public void UnknownSplitIsAnError()
    {
        var e = Assert.Throws<BertSharpException>(() => WikiText2.FileName("training"));
        Assert.Equal("unknown WikiText-2 split 'training' (expected train, valid or test)", e.Message);
    }

    [Fact]
    public void UrlResolution()
    {
        string? NoEnv(string _) => null;
        Assert.Equal(WikiText2.OfficialUrls, WikiText2.ResolveUrls(null, NoEnv));
        Assert.Equal(["https://wikitext.smerity.com/wikitext-2-v1.zip", "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip"],
            WikiText2.OfficialUrls);
        Assert.Equal(["http://h/x.zip"], WikiText2.ResolveUrls("http://h/x.zip", NoEnv));
        Assert.Equal(["http://h/base/wikitext-2-v1.zip"], WikiText2.ResolveUrls("http://h/base/", NoEnv));
        Assert.Equal(["http://h/a.zip?sig=1"], WikiText2.ResolveUrls("http://h/a.zip?sig=1", NoEnv));
        string? Env(string name) => name == WikiText2.UrlEnvVar ? "http://mirror" : null;
        Assert.Equal(["http://mirror/wikitext-2-v1.zip"], WikiText2.ResolveUrls(null, Env));
        Assert.Equal(["http://option/w.zip"], WikiText2.ResolveUrls("http://option/w.zip", Env));
    }

    [Fact]
    public void DataDirResolution()
    {
        string? NoEnv(string _) => null;
        string? Env(string name) => name == "BERTSHARP_DATA_DIR" ? "/env/data" : null;
        Assert.Equal(Path.GetFullPath("/opt/data"), DatasetCache.ResolveDataDir("/opt/data", Env));
        Assert.Equal(Path.GetFullPath("/env/data"), DatasetCache.ResolveDataDir(null, Env));
        Assert.Equal(Path.GetFullPath("/env/data"), DatasetCache.ResolveDataDir("  ", Env));
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "bertsharp", "datasets"), DatasetCache.ResolveDataDir(null, NoEnv));
    }

    [Fact]
    public void FindFilePrefersThePlainFile()
    {
        using var dir = new TempDir();
        Assert.Null(DatasetCache.FindFile(dir.Path, "a.tokens"));
        dir.Write("a.tokens.gz", "x");
        Assert.Equal(dir.File("a.tokens.gz"), DatasetCache.FindFile(dir.Path, "a.tokens"));
        dir.Write("a.tokens", "x");
        Assert.Equal(dir.File("a.tokens"), DatasetCache.FindFile(dir.Path, "a.tokens"));
    }

    [Fact]
    public void Sha256OfGzipIsOfTheDecompressedContent()
    {
        using var dir = new TempDir();
        string plain = dir.Write("wiki.test.tokens", "hello\n");
        string gz = dir.Write("wiki.test.tokens.gz", "hello\n");
        string expected = Convert.ToHexStringLower(SHA256.HashData("hello\n"u8));
        Assert.Equal(expected, DatasetCache.ComputeSha256(plain));
        Assert.Equal(expected, DatasetCache.ComputeSha256(gz));
        WikiText2.Verify(gz, new Dictionary<string, string> { ["wiki.test.tokens"] = expected });
        var e = Assert.Throws<BertSharpException>(() => WikiText2.Verify(gz));
        Assert.StartsWith($"{gz}: SHA-256 mismatch (expected d790b833", e.Message);
    }

    [Fact]
    public void ProgressBarText()
    {
        Assert.Equal("wt2 [#########-----------]  45.0%  2.0 / 4.5 MB",
            DownloadProgressBar.Format("wt2", new DownloadProgress("u", 2_025_000, 4_500_000, false)));
        Assert.Equal("wt2 1.5 MB", DownloadProgressBar.Format("wt2", new DownloadProgress("u", 1_500_000, null, false)));
        var w = new StringWriter();
        var bar = new DownloadProgressBar(w, "wt2");
        bar.Report(new DownloadProgress("u", 0, 100, false));
        bar.Report(new DownloadProgress("u", 100, 100, true));
        Assert.EndsWith("wt2 [####################] 100.0%  0.0 / 0.0 MB" + Environment.NewLine, w.ToString());
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            lock (this) report(value);
        }
    }
}
