using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.Embedding;
using Microsoft.Extensions.AI;
using static BertSharp.Tests.Cli.CliRunner;
using static TorchSharp.torch;

namespace BertSharp.Tests.Tasks;

/// <summary>Sentence embeddings on the tiny fixture model: pooling by hand, sentence-transformers metadata, the data
/// shapes, the encoder's API and CLI, and fine-tuning an encoder until it beats its starting point.</summary>
[Collection(SerialCollection.Name)] // the fine-tuning tests' seeded runs: libtorch's generator is process-global
public class EmbeddingTests
{
    static readonly string[] Vocabulary = File.ReadAllLines(Path.Combine(TestPaths.TinyBert, "vocab.txt")).Where(w => w.Length > 2 && w.All(char.IsLetter)).ToArray();

    [Fact]
    public void PoolingModesMatchHandComputedValues()
    {
        // one input, three tokens (the last is padding), hidden size 2
        using var x = tensor(new float[] { 1, 2, 3, 4, 50, 60 }, [1, 3, 2]);
        using var mask = tensor(new long[] { 1, 1, 0 }, [1, 3]);
        float[] Pool(params PoolingMode[] m) { using var p = SentencePooling.Pool(x, mask, m); return p.data<float>().ToArray(); }
        Assert.Equal([1f, 2f], Pool(PoolingMode.Cls));
        Assert.Equal([3f, 4f], Pool(PoolingMode.Max));
        Assert.Equal([2f, 3f], Pool(PoolingMode.Mean));
        var sqrt = Pool(PoolingMode.MeanSqrtLen);
        Assert.Equal(4 / Math.Sqrt(2), sqrt[0], 1e-6);
        Assert.Equal(6 / Math.Sqrt(2), sqrt[1], 1e-6);
        // several modes concatenate in sentence-transformers' order, whatever order they are given in
        Assert.Equal([1f, 2f, 3f, 4f, 2f, 3f], Pool(PoolingMode.Mean, PoolingMode.Cls, PoolingMode.Max));
    }

    static string StFolder(string pooling = """{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}""",
        string? modules = null)
    {
        var dir = TestPaths.CopyOf(TestPaths.TinyBert);
        File.WriteAllText(Path.Combine(dir, "modules.json"), modules ?? """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """);
        Directory.CreateDirectory(Path.Combine(dir, "1_Pooling"));
        File.WriteAllText(Path.Combine(dir, "1_Pooling", "config.json"), pooling);
        File.WriteAllText(Path.Combine(dir, "sentence_bert_config.json"), """{"max_seq_length": 16, "do_lower_case": false}""");
        return dir;
    }

    [Fact]
    public void SentenceTransformersFilesChoosePoolingNormalisationAndLength()
    {
        var s = SentenceEmbeddingSettings.Read(StFolder(), 32);
        Assert.Equal([PoolingMode.Cls], s.Pooling);
        Assert.True(s.Normalize);
        Assert.Equal(16, s.MaxSeqLength);
        Assert.True(s.FromSentenceTransformers);
        var plain = SentenceEmbeddingSettings.Read(TestPaths.TinyBert, 32);
        Assert.False(plain.FromSentenceTransformers);
        Assert.Equal([PoolingMode.Mean], plain.Pooling);
        Assert.False(plain.Normalize);

        using var encoder = SentenceEncoder.Load(StFolder());
        Assert.Equal(16, encoder.MaxSeqLength);
        var v = encoder.Encode("the word of the day");
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 1e-5);
    }

    [Theory]
    [InlineData("""{"word_embedding_dimension": 32}""", "names no pooling mode")]
    [InlineData("""{"word_embedding_dimension": 32, "pooling_mode_lasttoken": true}""", "pooling_mode_lasttoken is not supported")]
    [InlineData("""{"word_embedding_dimension": 48, "pooling_mode_mean_tokens": true}""", "word_embedding_dimension 48 differs from the model's hidden_size 32")]
    [InlineData("""{"pooling_mode_mean_tokens": "yes"}""", "pooling_mode_mean_tokens must be true or false")]
    [InlineData("""{"pooling_mode_mean_tokens": tru""", "not valid JSON")]
    public void ABadPoolingConfigIsAOneLineErrorNamingTheFile(string pooling, string message)
    {
        var dir = StFolder(pooling);
        var e = Assert.Throws<BertSharpException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(Path.Combine(dir, "1_Pooling", "config.json"), e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AModuleBertSharpDoesNotRunIsRefusedByName()
    {
        var dir = StFolder(modules: """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
            """);
        var e = Assert.Throws<BertSharpException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("sentence_transformers.models.Dense", e.Message);
        Assert.Contains("modules.json", e.Message);
    }

    [Fact]
    public void EncodingIsTheSameAloneInABatchAndFromManyThreads()
    {
        using var encoder = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { BatchSize = 4 });
        Assert.Single(encoder.Notes);
        Assert.Contains("mean pooling", encoder.Notes[0]);
        var r = new Random(3);
        var texts = Enumerable.Range(0, 23).Select(i => string.Join(' ', Enumerable.Range(0, 1 + r.Next(30)).Select(_ => Vocabulary[r.Next(200)]))).ToList();
        var batch = encoder.Encode(texts);
        for (int i = 0; i < texts.Count; i += 5)
        {
            var alone = encoder.Encode(texts[i]);
            for (int k = 0; k < alone.Length; k++) Assert.Equal(alone[k], batch[i][k], 1e-5);
        }
        var parallel = new float[texts.Count][][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t => parallel[t] = encoder.Encode(texts));
        foreach (var p in parallel.Take(8))
            for (int i = 0; i < texts.Count; i++) Assert.Equal(batch[i], p[i]);
    }

    [Fact]
    public async Task TheEncoderIsAnEmbeddingGenerator()
    {
        using var encoder = SentenceEncoder.Load(TestPaths.TinyBert);
        IEmbeddingGenerator<string, Embedding<float>> generator = encoder;
        var result = await generator.GenerateAsync(["the day", "one word"]);
        Assert.Equal(2, result.Count);
        Assert.Equal(encoder.Encode("one word"), result[1].Vector.ToArray());
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        Assert.Equal(32, metadata!.DefaultModelDimensions);
        Assert.Equal("BertSharp", metadata.ProviderName);
        var vector = await generator.GenerateVectorAsync("the day");
        Assert.Equal(encoder.Encode("the day"), vector.ToArray());
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 64 }));
    }

    [Fact]
    public void LongTextsAreCutOrChunked()
    {
        var text = string.Join(' ', Enumerable.Range(0, 40).Select(i => Vocabulary[i]));
        using var cut = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { MaxSeqLength = 10 });
        var c = cut.EncodeWithDetails([text, "the day"]);
        Assert.True(c[0].Truncated);
        Assert.Equal(42, c[0].Tokens);
        Assert.False(c[1].Truncated);
        // the cut text embeds as its first 8 word pieces do
        Assert.Equal(cut.Encode(string.Join(' ', Enumerable.Range(0, 8).Select(i => Vocabulary[i]))), c[0].Vector);

        using var chunked = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { MaxSeqLength = 10, Chunk = true, ChunkOverlap = 0 });
        var w = chunked.EncodeWithDetails([text]);
        Assert.False(w[0].Truncated);
        Assert.Equal(5, w[0].Windows);
        // five windows of 8 pieces with no overlap, each 10 tokens: the weighted mean is the plain mean of the windows
        var windows = Enumerable.Range(0, 5).Select(k => cut.Encode(string.Join(' ', Enumerable.Range(8 * k, 8).Select(i => Vocabulary[i])))).ToList();
        for (int d = 0; d < 32; d++) Assert.Equal(windows.Average(v => v[d]), w[0].Vector[d], 1e-5);
    }

    [Fact]
    public void DataShapesAreFoundByContent()
    {
        var dir = TestPaths.TempDir("embed-data");
        var anchors = Path.Combine(dir, "pairs.tsv");
        File.WriteAllLines(anchors, ["anchor\tpositive\tnegative", "a b\tc d\te f", "g h\ti j\t"]);
        var a = EmbeddingData.Read(anchors, new DataFileOptions()).Examples;
        Assert.Equal(new EmbeddingExample("a b", "c d", "e f", Source: $"{anchors}:2"), a[0]);
        Assert.Null(a[1].Negative);

        var nli = Path.Combine(dir, "nli.jsonl");
        File.WriteAllLines(nli, [
            """{"sentence1": "p1", "sentence2": "e1", "gold_label": "entailment"}""",
            """{"sentence1": "p1", "sentence2": "c1", "gold_label": "contradiction"}""",
            """{"sentence1": "p1", "sentence2": "n1", "gold_label": "neutral"}""",
            """{"sentence1": "p2", "sentence2": "e2", "gold_label": "entailment"}""",
            """{"sentence1": "p3", "sentence2": "x", "gold_label": "-"}""",
        ]);
        var n = EmbeddingData.Read(nli, new DataFileOptions());
        Assert.Equal([("p1", "e1", "c1"), ("p2", "e2", null)], n.Examples.Select(e => (e.Text, e.Positive, e.Negative)).ToArray());
        Assert.Contains(n.Notes, s => s.Contains("1 (premise, entailment, contradiction) triples and 1 (premise, entailment) pairs"));

        var scored = Path.Combine(dir, "scored.csv");
        File.WriteAllLines(scored, ["sentence1,sentence2,score", "a,b,4.5", "c,d,0.5"]);
        Assert.Equal([4.5, 0.5], EmbeddingData.Read(scored, new DataFileOptions()).Examples.Select(e => e.Score!.Value).ToArray());

        var bad = Path.Combine(dir, "bad.tsv");
        File.WriteAllLines(bad, ["sentence1\tsentence2\tlabel", "a\tb\tpositive"]);
        Assert.Contains("neither scores nor NLI labels", Assert.Throws<BertSharpException>(() => EmbeddingData.Read(bad, new DataFileOptions())).Message);
    }

    [Fact]
    public void EmbedCommandWritesJsonLinesAndNpy()
    {
        var (code, output, err) = Run("embed", TestPaths.TinyBert, "the day", "one word");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(1, lines[1].GetProperty("index").GetInt32());
        var vector = lines[1].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(32, vector.Length);
        Assert.Contains("mean pooling", err);

        var dir = TestPaths.TempDir("embed-cli");
        var input = Path.Combine(dir, "texts.txt");
        File.WriteAllLines(input, ["the day", "one word", ""]);
        var npy = Path.Combine(dir, "x.npy");
        (code, _, err) = Run("embed", TestPaths.TinyBert, "--input", input, "--output", npy);
        Assert.True(code == 0, err);
        var matrix = NpyFile.Read(npy);
        Assert.Equal(3, matrix.Length);
        Assert.Equal(vector, matrix[1]);
        var bytes = File.ReadAllBytes(npy);
        Assert.Equal(0, (bytes.Length - 3 * 32 * 4) % 64);   // NumPy aligns the data to 64 bytes

        var empty = Path.Combine(dir, "empty.txt");
        File.WriteAllText(empty, "");
        (code, _, err) = Run("embed", TestPaths.TinyBert, "--input", empty);
        Assert.Equal(1, code);
        Assert.Contains($"{empty}: no texts", err);

        (code, _, err) = Run("embed", dir, "hello");
        Assert.Equal(1, code);
        Assert.Contains("config.json", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    /// <summary>Anchors of words from one half of a vocabulary, positives the same sentence with each word replaced by its
    /// fixed partner from the other half: only an encoder that learned the pairing ranks each anchor's positive first.</summary>
    internal static void WriteParaphrases(string path, int count, int seed)
    {
        var r = new Random(seed);
        var lines = new List<string> { "anchor\tpositive" };
        for (int i = 0; i < count; i++)
        {
            var idx = Enumerable.Range(0, 3 + r.Next(4)).Select(_ => r.Next(60)).ToList();
            lines.Add($"{string.Join(' ', idx.Select(k => Vocabulary[k]))}\t{string.Join(' ', idx.Select(k => Vocabulary[100 + k]))}");
        }
        File.WriteAllLines(path, lines);
    }

    [Fact]
    public void FineTuningWithInBatchNegativesBeatsTheStartingModelAndSavesASentenceTransformersFolder()
    {
        var dir = TestPaths.TempDir("embed-train");
        string train = Path.Combine(dir, "train.tsv"), dev = Path.Combine(dir, "dev.tsv");
        WriteParaphrases(train, 256, 1);
        WriteParaphrases(dev, 64, 2);
        var output = Path.Combine(dir, "run");
        using (var before = FineTunedModel.Load<EmbeddingModel>(SentenceEncoderFolder()))
        {
            var start = before.EvaluateFile(dev, new DataFileOptions()).Metrics["accuracy"];
            var result = FineTuneRun.Run(new FineTuneOptions
            {
                Task = "embed", Model = TestPaths.TinyBert, Train = train, Dev = dev, Output = output, Epochs = 25, BatchSize = 32, LearningRate = 3e-3, Seed = 1, Threads = 1,
            });
            Assert.True(result.Completed);
            var end = result.Final.Single(f => f.Split == "dev").Score.Metrics["accuracy"];
            Assert.True(end > start + 0.3, $"dev accuracy {start:F3} before, {end:F3} after");
        }
        foreach (var f in new[] { "modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config.json", "model.safetensors", "vocab.txt" })
            Assert.True(File.Exists(Path.Combine(output, f)), f);
        // The keys sentence-transformers 2.2's Pooling takes, and no others (it refuses unknown ones).
        var pooling = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "1_Pooling", "config.json"))).RootElement;
        Assert.Equal(["pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_mean_tokens", "word_embedding_dimension"],
            pooling.EnumerateObject().Select(p => p.Name).Order());
        Assert.True(pooling.GetProperty("pooling_mode_mean_tokens").GetBoolean());
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "config.json"))).RootElement;
        Assert.Equal("BertModel", config.GetProperty("architectures")[0].GetString());
        // HF BertModel's bare keys, as sentence-transformers saves them
        Assert.Contains("embeddings.word_embeddings.weight", BertSharp.Checkpoints.SafeTensorsFile.Load(Path.Combine(output, "model.safetensors")).Keys);
        var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "results.json"))).RootElement;
        double saved = results.GetProperty("dev").GetProperty("metrics").GetProperty("accuracy").GetDouble();
        var (code, stdout, err) = Run("evaluate", output, "--data", dev, "--json");
        Assert.True(code == 0, err);
        Assert.Equal(saved, JsonDocument.Parse(stdout).RootElement.GetProperty("metrics").GetProperty("accuracy").GetDouble(), 1e-6);
    }

    /// <summary>The tiny model as a sentence-transformers folder with mean pooling (the embed family's own shape).</summary>
    static string SentenceEncoderFolder() => StFolder("""{"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true}""");

    [Fact]
    public void FineTuningOnScoredPairsWithCoSentRaisesTheDevSpearman()
    {
        var dir = TestPaths.TempDir("embed-sts");
        // score = 5 when the pair are partners (as in WriteParaphrases), else 0 to 4 by how many partner words they share
        var r = new Random(4);
        void Write(string path, int n)
        {
            var lines = new List<string> { "sentence1\tsentence2\tscore" };
            for (int i = 0; i < n; i++)
            {
                var a = Enumerable.Range(0, 4).Select(_ => r.Next(60)).ToList();
                int keep = r.Next(5);
                var b = a.Select((k, j) => j < keep ? k : r.Next(60)).ToList();
                lines.Add($"{string.Join(' ', a.Select(k => Vocabulary[k]))}\t{string.Join(' ', b.Select(k => Vocabulary[100 + k]))}\t{keep + (keep == 4 ? 1 : 0)}");
            }
            File.WriteAllLines(path, lines);
        }
        string train = Path.Combine(dir, "train.tsv"), dev = Path.Combine(dir, "dev.tsv");
        Write(train, 256);
        Write(dev, 64);
        var result = FineTuneRun.Run(new FineTuneOptions
        {
            Task = "embed", Model = TestPaths.TinyBert, Train = train, Dev = dev, Output = Path.Combine(dir, "run"), Epochs = 40, BatchSize = 32, LearningRate = 3e-3, Seed = 1, Threads = 1,
        });
        using var start = FineTunedModel.Load<EmbeddingModel>(SentenceEncoderFolder());
        double before = start.EvaluateFile(dev, new DataFileOptions()).Metrics["spearman"];
        double after = result.Final.Single().Score.Metrics["spearman"];
        Assert.True(after > before + 0.2, $"dev Spearman {before:F3} before, {after:F3} after");
    }
}
