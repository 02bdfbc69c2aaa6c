// ONNX Runtime on exported folders next to BertSharp's own forward pass (docs/EXPORT.md): the same token ids, the same
// thread count, in one process. Each round times every engine once, the engines' order rotating from round to round
// (a shared, noisy machine: a slow spell then falls on each engine in turn); the table gives the median over rounds.
//   latency: each of the first N inputs alone (batch 1, no padding), the median call, in ms;
//   throughput: consecutive batches of 32 inputs in file order, each padded to its longest, in sequences/s.
// Tokenization is outside the timings (the same ids feed every engine); each call includes making the input tensors
// and copying the outputs out.
//
// dotnet run -c Release --project bench/OnnxBench -- --model DIR --data FILE --onnx NAME=DIR[@basic] [--onnx NAME=DIR ...]
//     [--threads 2] [--rounds 5] [--latency-inputs 64] [--batches 8] [--batch-size 32] [--json OUT.json]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BertSharp;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Runtime;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using static TorchSharp.torch;

ProcessTuning.Apply();   // as the `bert` command does, before anything touches libtorch
var onnxDirs = new List<(string Name, string Dir)>();
var a = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--onnx") { var p = args[i + 1].Split('=', 2); onnxDirs.Add((p[0], p[1])); }
    else a[args[i]] = args[i + 1];
}
string Opt(string k, string d) => a.TryGetValue(k, out var v) ? v : d;
int threads = int.Parse(Opt("--threads", "2")), rounds = int.Parse(Opt("--rounds", "5"));
int latencyInputs = int.Parse(Opt("--latency-inputs", "64")), batches = int.Parse(Opt("--batches", "8")), batchSize = int.Parse(Opt("--batch-size", "32"));
TorchRuntime.Configure("cpu", threads, null);

using var model = FineTunedModel.Load(a["--model"]);
var tok = model.Tokenizer;
var family = TaskFamily.Named(model.TaskName);
var texts = model switch
{
    ClassificationModel => ((TaskFamily<ClassificationExample>)family).Read(a["--data"], new DataFileOptions()).Examples.Select(e => (e.Text, e.Pair)).ToList(),
    EmbeddingModel => ((TaskFamily<EmbeddingExample>)family).Read(a["--data"], new DataFileOptions()).Examples.Select(e => (e.Text, (string?)null)).ToList(),
    _ => throw new BertSharpException($"the bench runs classify and embed models; {a["--model"]} holds {model.TaskName}"),
};
int needed = Math.Max(latencyInputs, batches * batchSize);
if (texts.Count < needed) throw new BertSharpException($"{a["--data"]}: {texts.Count} inputs, the bench needs {needed}");
var encoded = texts.Take(needed).Select(t => tok.Encode(t.Text, t.Item2, model.MaxSeqLength)).ToList();

// A padded batch as flat [B, L] arrays (right padding with the pad id, mask 0).
(long[] Ids, long[] Mask, long[] Types, int B, int L) Pad(IReadOnlyList<BertSharp.Tokenization.BertEncoding> items)
{
    int B = items.Count, L = items.Max(e => e.Length);
    var ids = new long[B * L]; var mask = new long[B * L]; var types = new long[B * L];
    Array.Fill(ids, tok.PadId);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < items[b].Length; t++) { ids[b * L + t] = items[b].InputIds[t]; mask[b * L + t] = 1; types[b * L + t] = items[b].TokenTypeIds[t]; }
    return (ids, mask, types, B, L);
}
var single = encoded.Take(latencyInputs).Select(e => Pad([e])).ToList();
var full = Enumerable.Range(0, batches).Select(k => Pad(encoded.Skip(k * batchSize).Take(batchSize).ToList())).ToList();
double meanLength = full.Average(b => b.L);

// BertSharp: the task's forward pass and its post-processing (softmax; pooling + normalisation), as predict and embed run it.
float[] BertSharpRun((long[] Ids, long[] Mask, long[] Types, int B, int L) b)
{
    using var scope = NewDisposeScope();
    using var _ = no_grad();
    var ids = tensor(b.Ids, [b.B, b.L]); var mask = tensor(b.Mask, [b.B, b.L]); var types = tensor(b.Types, [b.B, b.L]);
    var output = model switch
    {
        ClassificationModel c => ((BertForSequenceClassification)c.Model).Forward(ids, types, mask).softmax(-1),
        EmbeddingModel e => e.Embed(ids, types, mask),
        _ => throw new InvalidOperationException(),
    };
    return output.data<float>().ToArray();
}
model.Model.eval();
// NAME=DIR@basic: ONNX Runtime's basic graph rewriting only (no transformer fusions of its own at load).
var runners = onnxDirs.Select(o =>
{
    var basic = o.Dir.EndsWith("@basic");
    string dir = basic ? o.Dir[..^"@basic".Length] : o.Dir;
    return (o.Name, Runner: new OnnxModelRunner(Path.Combine(dir, OnnxExport.ModelFile), threads,
        basic ? Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_BASIC : Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL));
}).ToList();
var engines = new List<(string Name, Func<(long[], long[], long[], int, int), float[]> Run)> { ("BertSharp", BertSharpRun) };
foreach (var (name, runner) in runners)
{
    string output = model is ClassificationModel ? "probabilities" : "sentence_embedding";
    engines.Add(($"ONNX Runtime {name}", b => runner.Run(b.Item1, b.Item2, b.Item3, b.Item4, b.Item5)[output].Data));
}

foreach (var (_, run) in engines) { foreach (var b in single.Take(5)) run(b); run(full[0]); }   // warm-up
var latency = engines.ToDictionary(e => e.Name, _ => new List<double>());
var throughput = engines.ToDictionary(e => e.Name, _ => new List<double>());
for (int r = 0; r < rounds; r++)
{
    for (int k = 0; k < engines.Count; k++)
    {
        var (name, run) = engines[(k + r) % engines.Count];
        var calls = new List<double>();
        foreach (var b in single)
        {
            var sw = Stopwatch.StartNew();
            run(b);
            calls.Add(sw.Elapsed.TotalMilliseconds);
        }
        latency[name].Add(Median(calls));
        var clock = Stopwatch.StartNew();
        foreach (var b in full) run(b);
        throughput[name].Add(batches * batchSize / clock.Elapsed.TotalSeconds);
    }
    Console.Error.WriteLine($"round {r + 1}/{rounds}: " + string.Join("; ", engines.Select(e => $"{e.Name} {latency[e.Name][^1]:F2} ms, {throughput[e.Name][^1]:F0} seq/s")));
}

static double Median(IEnumerable<double> values)
{
    var s = values.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

var inv = CultureInfo.InvariantCulture;
Console.WriteLine($"{a["--model"]} ({model.TaskName}): {threads} threads, {rounds} rounds; latency: {latencyInputs} inputs alone (mean {single.Average(b => b.L):F1} tokens); " +
    $"throughput: {batches} batches of {batchSize} (padded to a mean {meanLength:F1} tokens)");
Console.WriteLine();
Console.WriteLine("| engine | latency, batch 1 (ms, median of rounds) | throughput, batch 32 (seq/s, median of rounds) | rounds' range (ms · seq/s) |");
Console.WriteLine("| --- | ---: | ---: | --- |");
foreach (var (name, _) in engines)
    Console.WriteLine(string.Format(inv, "| {0} | {1:F2} | {2:F0} | {3:F2}–{4:F2} · {5:F0}–{6:F0} |", name, Median(latency[name]), Median(throughput[name]),
        latency[name].Min(), latency[name].Max(), throughput[name].Min(), throughput[name].Max()));
if (a.TryGetValue("--json", out var jsonPath))
    File.WriteAllText(jsonPath, JsonSerializer.Serialize(new { model = a["--model"], threads, rounds, latency_ms = latency, throughput_seq_s = throughput }, new JsonSerializerOptions { WriteIndented = true }));
foreach (var (_, runner) in runners) runner.Dispose();
