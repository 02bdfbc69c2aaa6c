using System.Diagnostics;
using BertSharp.Tasks;

namespace BertSharp.Benchmarking;

/// <summary>One engine's timing of a real model on real inputs: sequences/s (the median of its rounds' rates) and the
/// latency of one batch (tokenize, forward, pooling or head) at the 50th and 99th percentile over all rounds.</summary>
public sealed record InferenceTiming(string Engine, int BatchSize, int Inputs, double SequencesPerSecond, double P50Ms, double P99Ms,
    IReadOnlyList<double> RoundRates, long PeakRssBytes);

/// <summary>
/// Times in-process inference of one or more engines on the same inputs in the same process, alternating round by
/// round so that a machine's drift touches each alike: `bert bench infer --model` (BertSharp's own forward) and its
/// `--onnx` comparison with ONNX Runtime.
/// </summary>
public static class InferenceComparison
{
    /// <summary>An engine: a name and what it does with one batch of inputs (everything from text to the answer).</summary>
    public sealed record Engine(string Name, Action<IReadOnlyList<PredictInput>> RunBatch);

    public static IReadOnlyList<InferenceTiming> Run(IReadOnlyList<Engine> engines, IReadOnlyList<PredictInput> inputs, int batchSize, int rounds)
    {
        if (batchSize < 1) throw new BertSharpException($"batchSize must be at least 1, got {batchSize}") { Parameters = ["batchSize"] };
        if (rounds < 1) throw new BertSharpException($"rounds must be at least 1, got {rounds}") { Parameters = ["rounds"] };
        if (inputs.Count == 0) throw new BertSharpException("no inputs to time");
        var batches = new List<IReadOnlyList<PredictInput>>();
        for (int i = 0; i < inputs.Count; i += batchSize) batches.Add(inputs.Skip(i).Take(batchSize).ToList());
        var latencies = engines.Select(_ => new List<double>()).ToArray();
        var rates = engines.Select(_ => new List<double>()).ToArray();
        foreach (var e in engines) foreach (var b in batches.Take(3)) e.RunBatch(b);   // warm-up
        for (int r = 0; r < rounds; r++)
        {
            for (int e = 0; e < engines.Count; e++)
            {
                var total = Stopwatch.StartNew();
                foreach (var b in batches)
                {
                    var one = Stopwatch.StartNew();
                    engines[e].RunBatch(b);
                    latencies[e].Add(one.Elapsed.TotalMilliseconds);
                }
                rates[e].Add(inputs.Count / total.Elapsed.TotalSeconds);
            }
        }
        return engines.Select((e, i) => new InferenceTiming(e.Name, batchSize, inputs.Count, Median(rates[i]),
            Percentile(latencies[i], 0.50), Percentile(latencies[i], 0.99), rates[i], Benchmarks.PeakRss())).ToList();
    }

    static double Median(List<double> xs) => Percentile(xs, 0.5);

    /// <summary>The nearest-rank percentile.</summary>
    public static double Percentile(IReadOnlyList<double> xs, double p)
    {
        var sorted = xs.Order().ToArray();
        int rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
