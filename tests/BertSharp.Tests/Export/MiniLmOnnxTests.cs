using System.Text.Json;
using BertSharp.Export;
using BertSharp.Tests.Data;
using BertSharp.Tokenization;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace BertSharp.Tests.Export;

/// <summary>all-MiniLM-L6-v2 exported by BertSharp, run by ONNX Runtime, against the fixture's engines: ONNX Runtime on
/// the model's original ONNX export (last_hidden_state) and transformers (sentence embeddings).</summary>
[Collection(SerialCollection.Name)]   // loads models: the global generator (see OnnxExportTests)
public class MiniLmOnnxTests(ITestOutputHelper output)
{
    const string Sub = "models/all-MiniLM-L6-v2";
    static string ModelDir => Path.Combine(RealData.Dir!, Sub);
    static readonly JsonElement Reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "minilm-reference", "reference_outputs.json"))).RootElement;

    static readonly Lazy<string> Plain = new(() => Exported(optimize: false));
    static readonly Lazy<string> Optimized = new(() => Exported(optimize: true));

    static string Exported(bool optimize)
    {
        string dir = TestPaths.TempDir("minilm-onnx");
        OnnxExport.Export(ModelDir, dir, new OnnxExportOptions { Optimize = optimize });
        return dir;
    }

    static long[] Flat(string name) =>
        Reference.GetProperty("hidden_state_inputs").GetProperty(name).EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetInt64())).ToArray();

    static Dictionary<string, float[]> Run(InferenceSession session, long[] ids, long[] mask, long[] types, long batch, long length) =>
        OnnxExportTests.RunOnnx(session, (ids, mask, types, (int)batch, (int)length)).ToDictionary(kv => kv.Key, kv => kv.Value.Data);

    [RealDataFact(Sub)]
    public void LastHiddenStateMatchesTheOriginalExportOnRealTokensWithin1e4() => LastHiddenStateWithin1e4(optimize: false);

    [RealDataFact(Sub)]
    public void OptimizedLastHiddenStateMatchesTheOriginalExportOnRealTokensWithin1e4() => LastHiddenStateWithin1e4(optimize: true);

    void LastHiddenStateWithin1e4(bool optimize)
    {
        using var session = new InferenceSession(Path.Combine(optimize ? Optimized.Value : Plain.Value, "model.onnx"));
        var shape = Reference.GetProperty("last_hidden_state_shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        var mask = Flat("attention_mask");
        var actual = Run(session, Flat("input_ids"), mask, Flat("token_type_ids"), shape[0], shape[1])["token_embeddings"];
        var expected = Reference.GetProperty("last_hidden_state").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int t = 0; t < mask.Length; t++)
            if (mask[t] == 1)
                for (long k = 0; k < shape[2]; k++) max = Math.Max(max, Math.Abs(actual[t * shape[2] + k] - expected[t * shape[2] + k]));
        output.WriteLine($"last_hidden_state{(optimize ? " (--optimize)" : "")}: max abs difference {max:G3} on real tokens");
        Assert.True(max < 1e-4, $"max abs difference {max}");
    }

    [RealDataFact(Sub)]
    public void SentenceEmbeddingsMatchTransformersWithin1e5() => SentenceEmbeddingsWithin1e5(optimize: false);

    [RealDataFact(Sub)]
    public void OptimizedSentenceEmbeddingsMatchTransformersWithin1e5() => SentenceEmbeddingsWithin1e5(optimize: true);

    void SentenceEmbeddingsWithin1e5(bool optimize)
    {
        string dir = optimize ? Optimized.Value : Plain.Value;
        var info = OnnxModelInfo.Load(dir);
        Assert.Equal(["mean"], info.Pooling!);
        Assert.True(info.Normalize);
        Assert.Equal(256, info.MaxSeqLength);
        var tok = BertTokenizer.FromFolder(dir);
        using var session = new InferenceSession(Path.Combine(dir, "model.onnx"));
        var texts = Reference.GetProperty("embedding_texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var expected = Reference.GetProperty("embeddings").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        double max = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            // each text alone, as the fixture's transformers run
            var ids = tok.Encode(texts[i], null, info.MaxSeqLength).InputIds.Select(x => (long)x).ToArray();
            var e = Run(session, ids, ids.Select(_ => 1L).ToArray(), new long[ids.Length], 1, ids.Length)["sentence_embedding"];
            for (int k = 0; k < e.Length; k++) max = Math.Max(max, Math.Abs(e[k] - expected[i][k]));
        }
        output.WriteLine($"sentence embeddings{(optimize ? " (--optimize)" : "")}: max abs difference {max:G3} from transformers");
        Assert.True(max < 1e-5, $"max abs difference {max}");
    }

    [RealDataFact(Sub)]
    public void Int8EmbeddingsStayCloseToTheFloatOnes()
    {
        string dir = TestPaths.TempDir("minilm-int8");
        var result = OnnxExport.Export(ModelDir, dir, new OnnxExportOptions { Quantize = "int8" });
        // the linear weights shrink to a quarter; the word embeddings (half of MiniLM's weights) stay float32
        Assert.True(result.ModelBytes < 0.7 * new FileInfo(Path.Combine(Plain.Value, "model.onnx")).Length, $"{result.ModelBytes} bytes");
        var tok = BertTokenizer.FromFolder(dir);
        using var session = new InferenceSession(result.ModelPath);
        var texts = Reference.GetProperty("embedding_texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var expected = Reference.GetProperty("embeddings").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        double minCosine = 1;
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = tok.Encode(texts[i], null, 256).InputIds.Select(x => (long)x).ToArray();
            var e = Run(session, ids, ids.Select(_ => 1L).ToArray(), new long[ids.Length], 1, ids.Length)["sentence_embedding"];
            double cosine = e.Zip(expected[i], (a, b) => (double)a * b).Sum();   // both L2-normalised
            minCosine = Math.Min(minCosine, cosine);
            Assert.True(cosine > 0.97, $"text {i}: cosine {cosine} with the float embedding");
        }
        output.WriteLine($"int8 ({result.ModelBytes / 1e6:F1} MB): the lowest cosine with transformers' embedding of the 16 texts {minCosine:F4}");
    }
}
