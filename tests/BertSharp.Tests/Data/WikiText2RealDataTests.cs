using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using BertSharp.Data;
using Xunit.Abstractions;

namespace BertSharp.Tests.Data;

/// <summary>Reads the real WikiText-2 files (BERTSHARP_DATA_DIR, else ../shared/data); skipped when absent.</summary>
public class WikiText2RealDataTests(ITestOutputHelper output)
{
    static readonly Regex TitleLine = new(@"^ = [^=].* = $", RegexOptions.Compiled);

    static int CountTitles(string path)
    {
        using Stream file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz") ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream);
        int n = 0;
        while (reader.ReadLine() is { } line)
            if (TitleLine.IsMatch(line)) n++;
        return n;
    }

    static string Locate(string split) =>
        WikiText2.Locate(RealData.Dir, split, new DatasetDownloadOptions { AllowDownload = false });

    static void AssertClean(IReadOnlyList<Document> docs)
    {
        foreach (var doc in docs)
        {
            Assert.NotEmpty(doc.Sentences);
            foreach (var s in doc.Sentences)
            {
                // No heading or title text leaks into sentences, no escapes or <unk> remain. (A sentence may start
                // with "= ": test line 3417 is the legend " = <unk> for the next round ".)
                Assert.False((s.StartsWith("= ") && s.EndsWith(" =")) || s.Contains(" = = "), $"{doc.Source}: heading in sentence: {s}");
                Assert.DoesNotContain("@-@", s);
                Assert.DoesNotContain("@,@", s);
                Assert.DoesNotContain("@.@", s);
                Assert.DoesNotContain("<unk>", s);
                Assert.Equal(s.Trim(), s);
                Assert.NotEmpty(s);
            }
        }
    }

    [RealDataFact("wikitext-2")]
    public void ValidSplitHasOneDocumentPerArticle()
    {
        string path = Locate("valid");
        Assert.Equal("wiki.valid.tokens", Path.GetFileName(path));
        var docs = CorpusReader.Read(path).ToList();
        int titles = CountTitles(path);
        Assert.Equal(60, titles);
        Assert.Equal(titles, docs.Count);
        AssertClean(docs);
        Assert.Equal($"{path}:2", docs[0].Source);
        Assert.StartsWith("Homarus gammarus , known as the European lobster", docs[0].Sentences[0]);
        output.WriteLine($"valid: {docs.Count} documents, {docs.Sum(d => d.Sentences.Count)} sentences");
    }

    [RealDataFact("wikitext-2")]
    public void TestSplitHasOneDocumentPerArticle()
    {
        string path = Locate("test");
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(CountTitles(path), docs.Count);
        AssertClean(docs);
    }

    [RealDataFact("wikitext-2")]
    public void GzippedTrainSplitReadsAndMatchesThePublishedChecksum()
    {
        string path = Locate("train");
        Assert.Equal("wiki.train.tokens.gz", Path.GetFileName(path));   // as stored in shared/data
        WikiText2.Verify(path);                                         // SHA-256 after decompression

        CorpusReader.Read(path).Take(1).ToList();                       // warm up (JIT)
        var sw = Stopwatch.StartNew();
        var docs = CorpusReader.Read(path).ToList();
        sw.Stop();

        Assert.Equal(CountTitles(path), docs.Count);
        AssertClean(docs);
        long sentences = docs.Sum(d => d.Sentences.Count);
        long chars = docs.Sum(d => d.Sentences.Sum(s => (long)s.Length));
        output.WriteLine($"train: {docs.Count} documents, {sentences} sentences, {chars:N0} chars, read in {sw.Elapsed.TotalMilliseconds:F0} ms");   // bench/test-timings.sh
    }

    [RealDataFact("wikitext-2")]
    public void ValidAndTestChecksumsMatch()
    {
        WikiText2.Verify(Locate("valid"));
        WikiText2.Verify(Locate("test"));
    }
}
