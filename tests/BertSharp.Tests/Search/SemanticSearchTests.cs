using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Search;
using BertSharp.Tests.Data;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Search;

/// <summary>Search with a sentence encoder: the tiny fixture model (random weights, but each text's own vector is
/// unique) and, where the shared data is there, all-MiniLM-L6-v2.</summary>
public class SemanticSearchTests
{
    static readonly string[] Words = File.ReadAllLines(Path.Combine(TestPaths.TinyBert, "vocab.txt"))
        .Where(w => w.Length > 2 && w.All(char.IsLetter)).ToArray();

    /// <summary>Distinct short texts of the tiny model's words.</summary>
    static List<string> Texts(int count)
    {
        var rng = new Random(5);
        var texts = new HashSet<string>();
        while (texts.Count < count) texts.Add(string.Join(' ', Enumerable.Range(0, rng.Next(2, 8)).Select(_ => Words[rng.Next(Words.Length)])));
        return texts.ToList();
    }

    /// <summary>A corpus file with a blank line after every third text: line numbers differ from rows.</summary>
    static (string Path, List<string> Texts, List<int> Lines) Corpus(TempDir dir, int count = 20)
    {
        var texts = Texts(count);
        var lines = new List<string>();
        var numbers = new List<int>();
        foreach (var (t, i) in texts.Select((t, i) => (t, i)))
        {
            lines.Add(t);
            numbers.Add(lines.Count);
            if (i % 3 == 2) lines.Add("");
        }
        return (dir.Write("corpus.txt", string.Join('\n', lines) + "\n"), texts, numbers);
    }

    [Fact]
    public void Each_text_of_the_corpus_finds_itself_first()
    {
        using var dir = new TempDir();
        var (corpus, texts, lines) = Corpus(dir);
        using var encoder = SentenceEncoder.Load(TestPaths.TinyBert);
        using var index = SemanticSearch.BuildIndex(encoder, corpus, new IndexCorpusOptions { ChunkSize = 7 });
        Assert.Equal(texts.Count, index.Count);
        Assert.Equal(Path.GetFullPath(TestPaths.TinyBert), index.Model);
        Assert.Equal(32, index.Dimension);
        using var search = new SemanticSearch(index, encoder);
        var results = search.Search(texts, topK: 3);
        for (int i = 0; i < texts.Count; i++)
        {
            Assert.Equal(3, results[i].Length);
            Assert.Equal(new SearchHit(i, results[i][0].Score, lines[i], texts[i]), results[i][0]);
            Assert.True(Math.Abs(results[i][0].Score - 1) < 1e-5, $"{texts[i]}: {results[i][0].Score}");
        }
        // alone, the query is embedded without padding: the same rows, the scores to float rounding
        var alone = search.Search(texts[4], topK: 3);
        Assert.Equal(results[4].Select(h => h.Index), alone.Select(h => h.Index));
        Assert.All(alone.Zip(results[4]), p => Assert.True(Math.Abs(p.First.Score - p.Second.Score) < 1e-5));
    }

    [Fact]
    public void Indexing_reports_progress_and_can_keep_only_line_numbers()
    {
        using var dir = new TempDir();
        var (corpus, texts, lines) = Corpus(dir, 10);
        using var encoder = SentenceEncoder.Load(TestPaths.TinyBert);
        var reports = new List<IndexingProgress>();
        using var index = SemanticSearch.BuildIndex(encoder, corpus, new IndexCorpusOptions { ChunkSize = 4, StoreTexts = false },
            new InlineProgress(reports.Add));
        Assert.Equal([0, 4, 8, 10], reports.Select(r => r.Embedded));
        Assert.All(reports, r => Assert.Equal(10, r.Total));
        Assert.False(index.HasTexts);
        var hit = new SemanticSearch(index, encoder).Search(texts[6], 1)[0];
        Assert.Equal((6, lines[6], (string?)null), (hit.Index, hit.Line, hit.Text));
    }

    sealed class InlineProgress(Action<IndexingProgress> report) : IProgress<IndexingProgress>
    {
        public void Report(IndexingProgress value) => report(value);
    }

    [Fact]
    public void Open_loads_the_model_the_index_names()
    {
        using var dir = new TempDir();
        var (corpus, texts, _) = Corpus(dir, 8);
        using (var encoder = SentenceEncoder.Load(TestPaths.TinyBert))
        using (var index = SemanticSearch.BuildIndex(encoder, corpus))
            index.Save(dir.File("c.index"));
        using var search = SemanticSearch.Open(dir.File("c.index"));
        Assert.True(search.UsesIndexModel);
        Assert.Equal(2, search.Search(texts[2], 1)[0].Index);
    }

    [Fact]
    public void The_cli_indexes_a_corpus_and_answers_queries()
    {
        using var dir = new TempDir();
        var (corpus, texts, lines) = Corpus(dir);
        string index = dir.File("corpus.index");
        var (code, stdout, err) = Run("search", "index", TestPaths.TinyBert, "--input", corpus, "--output", index);
        Assert.True(code == 0, err);
        Assert.Equal("", stdout);
        Assert.Contains($"indexed {texts.Count} texts of {corpus}", err);
        Assert.Contains("mean pooling", err);   // the encoder's note on a plain BERT folder

        (code, stdout, err) = Run("search", "query", index, texts[5], "--top-k", "2");
        Assert.True(code == 0, err);
        var plain = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, plain.Length);
        Assert.Matches($@"^  1  (1\.0000|0\.9999)  line {lines[5]} +{System.Text.RegularExpressions.Regex.Escape(texts[5])}$", plain[0]);

        string queries = dir.Write("queries.txt", string.Join('\n', texts));
        (code, stdout, err) = Run("search", "query", index, "--input", queries, "--json", "--top-k", "3");
        Assert.True(code == 0, err);
        var json = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(texts.Count, json.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            Assert.Equal(texts[i], json[i].GetProperty("query").GetString());
            var hits = json[i].GetProperty("hits").EnumerateArray().ToList();
            Assert.Equal(3, hits.Count);
            Assert.Equal([1, 2, 3], hits.Select(h => h.GetProperty("rank").GetInt32()));
            Assert.Equal(lines[i], hits[0].GetProperty("line").GetInt32());
            Assert.Equal(i, hits[0].GetProperty("index").GetInt32());
            Assert.Equal(texts[i], hits[0].GetProperty("text").GetString());
        }
    }

    [Fact]
    public void The_cli_gives_one_line_errors_for_bad_input()
    {
        using var dir = new TempDir();
        var (corpus, texts, _) = Corpus(dir, 6);
        string index = dir.File("c.index");
        Assert.Equal(0, Run("search", "index", TestPaths.TinyBert, "--input", corpus, "--output", index).Code);

        void Fails(string expected, params string[] args)
        {
            var (code, stdout, err) = Run(args);
            Assert.True(code == 1, $"exit {code}: {err}");
            Assert.Equal("", stdout);
            Assert.Equal(1, err.Trim().Split('\n').Length);
            Assert.Contains(expected, err);
        }
        string empty = dir.Write("empty.txt", "\n\n");
        Fails($"error: {empty}: nothing to index: the file has no text", "search", "index", TestPaths.TinyBert, "--input", empty, "--output", dir.File("e.index"));
        Assert.False(File.Exists(dir.File("e.index")));
        Fails($"error: {corpus}: not an embedding index", "search", "query", corpus, "hello");
        var bytes = File.ReadAllBytes(index);
        string cut = dir.WriteBytes("cut.index", bytes[..(bytes.Length - 10)]);
        Fails($"error: {cut}: truncated", "search", "query", cut, "hello");
        Fails("error: --top-k must be 1 or more (got 0)", "search", "query", index, "hello", "--top-k", "0");
        Fails("error: give the queries as TEXT arguments or with --input FILE", "search", "query", index);

        // an index of 16-dimension vectors, queried with the tiny model (32)
        using (var b = new EmbeddingIndexBuilder("other/model-16", 16))
        {
            b.Add(new float[16], "x");
            using var other = b.Build();
            other.Save(dir.File("other.index"));
        }
        Fails($"error: {dir.File("other.index")}: built with other/model-16 (16 dimensions); the query model {TestPaths.TinyBert} makes 32-dimension vectors",
            "search", "query", dir.File("other.index"), "hello", "--model", TestPaths.TinyBert);
        Fails($"error: {dir.File("other.index")}: its model other/model-16 cannot be loaded here", "search", "query", dir.File("other.index"), "hello");

        // another model of the same dimension: allowed with --model, with a warning
        var (okCode, okOut, okErr) = Run("search", "query", index, texts[0], "--model", TestPaths.CopyOf(TestPaths.TinyBert), "--top-k", "1");
        Assert.True(okCode == 0, okErr);
        Assert.Contains("warning: the index was built with", okErr);
        Assert.Contains(texts[0], okOut);
    }

    [Fact]
    public void An_index_built_from_a_hub_id_names_the_id_and_opens_offline()
    {
        using var hub = new BertSharp.Tests.Hub.FakeHub();
        const string id = BertSharp.Tests.Hub.HubFixtures.TinySentence;
        hub.AddRepo(id, BertSharp.Tests.Hub.HubFixtures.TinySentenceFiles());
        using var dir = new TempDir();
        var online = new BertSharp.Hub.HubOptions { Endpoint = hub.Endpoint, CacheDir = dir.File("hub") };
        var (corpus, texts, lines) = Corpus(dir, 8);
        using (var encoder = SentenceEncoder.Load(id, new SentenceEncoderOptions { Hub = online }))
        using (var index = SemanticSearch.BuildIndex(encoder, corpus, new IndexCorpusOptions { ModelName = id }))
        {
            Assert.Equal(id, index.Model);   // not the cache folder it was loaded from
            Assert.True(index.ModelNormalizes);
            index.Save(dir.File("c.index"));
        }
        int requests = hub.Requests.Count;
        using var search = SemanticSearch.Open(dir.File("c.index"), options: new SentenceEncoderOptions { Hub = online with { Offline = true } });
        Assert.Equal(requests, hub.Requests.Count);
        Assert.Equal(id, search.QueryModel);
        Assert.True(search.UsesIndexModel);
        Assert.Equal(lines[3], search.Search(texts[3], 1)[0].Line);
    }

    const string MiniLm = "models/all-MiniLM-L6-v2";

    [RealDataFact(MiniLm)]
    public void MiniLm_finds_each_sentence_first_and_a_paraphrase_next()
    {
        string[] sentences =
        [
            "A man is playing a guitar.", "Someone is playing an instrument.",
            "A woman is slicing an onion.", "A person is cutting vegetables in the kitchen.",
            "The stock market fell sharply today.", "Shares dropped steeply on Wall Street.",
            "Two dogs are running through a field.", "Puppies chase each other on the grass.",
            "How do I reset my password?", "I forgot my login credentials and need to change them.",
            "The train to Paris was delayed by an hour.", "Rain is expected for the whole weekend.",
        ];
        using var dir = new TempDir();
        string corpus = dir.Write("corpus.txt", string.Join('\n', sentences));
        using var encoder = SentenceEncoder.Load(Path.Combine(RealData.Dir!, MiniLm));
        using var index = SemanticSearch.BuildIndex(encoder, corpus);
        Assert.True(index.ModelNormalizes);
        using var search = new SemanticSearch(index, encoder);
        var results = search.Search(sentences, topK: 2);
        for (int i = 0; i < sentences.Length; i++)
        {
            Assert.Equal(i, results[i][0].Index);
            Assert.True(Math.Abs(results[i][0].Score - 1) < 1e-5);
            if (i < 10) Assert.Equal(i ^ 1, results[i][1].Index);   // the paraphrase partner comes next
        }
    }
}
