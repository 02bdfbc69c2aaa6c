using System.Diagnostics;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Runtime;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Benchmarking;

/// <summary>One benchmark's figures. FLOP counts come from the shapes (matrix products only), so MFU is
/// achieved model FLOP/s over the matmul peak measured on the same machine in the same run.</summary>
public sealed record BenchResult(string Name, string Precision, double Seconds, long Iterations, double SequencesPerSecond,
    double TokensPerSecond, double LatencyMs, double FlopsPerIteration, double AchievedGflops, double? Mfu, long PeakRssBytes,
    string Detail);

/// <summary>The shapes a benchmark of a model preset runs at unless told otherwise: the `seed` project's pre-training
/// batch for `seed`; for the other presets BERT's uncased vocabulary and a batch that fits in memory at `base` size
/// (512 × 64 sequences through BERT-base would take tens of GB).</summary>
public sealed record BenchShape(int BatchSize, int SeqLength, int VocabSize, int MlmPredictions)
{
    public static BenchShape For(string preset) => preset == "seed" ? new(512, 64, 20256, 10) : new(8, 128, 30522, 20);
}

public static class Benchmarks
{
    /// <summary>Peak RSS since the last reset (VmHWM); Linux resets it when "5" is written to clear_refs.</summary>
    public static long PeakRss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return Process.GetCurrentProcess().PeakWorkingSet64;
    }

    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    static double Time(Action step, int warmup, ref long iterations, double minSeconds)
    {
        for (int i = 0; i < warmup; i++) step();
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (n < iterations || sw.Elapsed.TotalSeconds < minSeconds) { step(); n++; }
        iterations = n;
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The machine's matrix-multiply peak for a dtype: square products of size n, the best of 5 rounds of
    /// ≥ 0.5 s (a peak is a maximum; on a shared or frequency-scaling machine single rounds vary by 1.5×).</summary>
    public static BenchResult MatmulPeak(ScalarType dtype, int n = 2048, Device? device = null)
    {
        device ??= CPU;
        ResetPeakRss();
        using var a = randn(n, n, device: device).to(dtype);
        using var b = randn(n, n, device: device).to(dtype);
        double s = double.MaxValue;
        long iters = 0;
        for (int round = 0; round < 5; round++)
        {
            long roundIters = 2;
            double roundSeconds = Time(() => { using var _ = a.matmul(b); }, round == 0 ? 2 : 0, ref roundIters, 0.5);
            if (roundSeconds / roundIters < s / Math.Max(1, iters)) (s, iters) = (roundSeconds, roundIters);
        }
        double flops = 2.0 * n * n * n;
        double gflops = flops * iters / s / 1e9;
        return new BenchResult($"matmul {n}x{n}", Name(dtype), s, iters, 0, 0, s / iters * 1000, flops, gflops, null, PeakRss(),
            $"{CpuModel()}, {torch.get_num_threads()} thread(s); BertSharp's CPU kernels on {KernelThreads.Threads}"
            + (dtype == ScalarType.Float32 ? $"; {Mkl.DispatchStatus}" : "")
            + $"; {ProcessTuning.Applied?.OpenMp ?? "no process tuning"}");
    }

    /// <summary>The processor's name from /proc/cpuinfo, so that a table says which machine it measured.</summary>
    static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"));
            if (line != null) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }

    static string Name(ScalarType t) => t == ScalarType.BFloat16 ? "bf16" : "fp32";

    /// <summary>Matrix-product FLOPs of one forward pass of the encoder over B×L tokens (pooler included).</summary>
    public static double EncoderForwardFlops(BertConfig c, long B, long L)
    {
        double H = c.HiddenSize, I = c.IntermediateSize, tokens = B * L;
        double perLayer = tokens * (2 * 3 * H * H + 2 * H * H + 2 * 2 * H * I) + 2 * 2 * B * L * L * H;
        return c.NumHiddenLayers * perLayer + 2 * B * H * H;
    }

    /// <summary>One pre-training step (forward + backward ≈ 3× forward FLOPs) on synthetic full-length batches.</summary>
    public static BenchResult TrainStep(BertConfig config, int batch, int seqLen, int predictionsPerSeq, ScalarType precision, long steps, Device? device = null)
    {
        device ??= CPU;
        ResetPeakRss();
        {
            using var model = new BertForPreTraining(config, new ComputeOptions { Dtype = precision });
            model.InitWeights();
            model.to(device);
            model.train();
            using var opt = torch.optim.AdamW(model.parameters(), lr: 1e-4);
            using var ids = randint(5, config.VocabSize, new long[] { batch, seqLen }, device: device);
            using var types = zeros(batch, seqLen, dtype: ScalarType.Int64, device: device);
            using var mask = ones(batch, seqLen, dtype: ScalarType.Int64, device: device);
            var pos = new long[batch * predictionsPerSeq];
            for (int b = 0; b < batch; b++) for (int p = 0; p < predictionsPerSeq; p++) pos[b * predictionsPerSeq + p] = (long)b * seqLen + 1 + p * (seqLen - 2) / predictionsPerSeq;
            using var positions = tensor(pos, device: device);
            using var labels = randint(5, config.VocabSize, new long[] { pos.Length }, device: device);
            using var nsp = randint(0, 2, new long[] { batch }, device: device);
            var parameters = model.parameters().ToList();
            var heap = NativeHeap.ForTraining();   // the trainer's heap policy, in a tuned process
            void Step()
            {
                using (NewDisposeScope())
                {
                    FusedAdamW.ClearGradients(parameters);
                    var (loss, _, _) = ShardedPretrainingLoss.Compute(model, ids, types, mask, positions, labels, nsp);   // the trainer's step
                    loss.backward();
                    FusedAdamW.Step(opt, FusedAdamW.ClipScale(FusedAdamW.GradientNorm(parameters), 1.0));
                }
                heap?.AfterStep();
            }
            long iters = steps;
            double s = Time(Step, 2, ref iters, 0);
            double fwd = EncoderForwardFlops(config, batch, seqLen)
                + 2.0 * pos.Length * (config.HiddenSize * config.HiddenSize + (double)config.HiddenSize * config.VocabSize) + 2.0 * batch * config.HiddenSize * 2;
            double flops = 3 * fwd;
            double gflops = flops * iters / s / 1e9;
            return new BenchResult($"train {Describe(config)} batch {batch}x{seqLen}", Name(precision), s, iters, batch * iters / s,
                (double)batch * seqLen * iters / s, s / iters * 1000, flops, gflops, null, PeakRss(), $"{predictionsPerSeq} MLM predictions/sequence, vocab {config.VocabSize}; batch run as {DataParallel.Shards(batch, device, model.Compute.Kernels)} shard(s)");
        }
    }

    /// <summary>Sequence-classification inference (no gradients) on synthetic full-length batches.</summary>
    public static BenchResult Inference(BertConfig config, int batch, int seqLen, ScalarType precision, long steps, Device? device = null)
    {
        device ??= CPU;
        ResetPeakRss();
        {
            var c = config.Clone();
            c.Labels = new() { "a", "b" };
            TorchRuntime.Seed(1);
            using var model = new BertForSequenceClassification(c, new ComputeOptions { Dtype = precision });
            model.InitWeights();
            model.to(device);
            model.eval();
            using var ids = randint(5, c.VocabSize, new long[] { batch, seqLen }, device: device);
            using var _ = no_grad();
            void Step() { using var o = model.Forward(ids); }
            long iters = steps;
            double s = Time(Step, 2, ref iters, 1.0);
            double flops = EncoderForwardFlops(c, batch, seqLen);
            return new BenchResult($"infer {Describe(config)} batch {batch}x{seqLen}", Name(precision), s, iters, batch * iters / s,
                (double)batch * seqLen * iters / s, s / iters * 1000, flops, flops * iters / s / 1e9, null, PeakRss(), "sequence classification");
        }
    }

    /// <summary>Largest |logit difference| between fp32 and bf16 inference of the same weights and inputs.</summary>
    public static double Bf16LogitsMaxDiff(BertConfig config, int batch, int seqLen)
    {
        var c = config.Clone();
        c.Labels = new() { "a", "b" };
        TorchRuntime.Seed(1);
        using var fp32 = new BertForSequenceClassification(c);
        fp32.InitWeights();
        fp32.eval();
        using var bf16 = new BertForSequenceClassification(c, new ComputeOptions { Dtype = ScalarType.BFloat16 });
        bf16.load_state_dict(fp32.state_dict());
        bf16.eval();
        using var ids = randint(5, c.VocabSize, new long[] { batch, seqLen });
        using var _ = no_grad();
        using var a = fp32.Forward(ids);
        using var b = bf16.Forward(ids).to(ScalarType.Float32);
        return (a - b).abs().max().item<float>();
    }

    static string Describe(BertConfig c) => $"L{c.NumHiddenLayers}/H{c.HiddenSize}/A{c.NumAttentionHeads}";

    /// <summary>The tokenizer alone, one thread, over WikiText-2 validation lines.</summary>
    public static BenchResult Tokenizer(BertTokenizer tokenizer, IReadOnlyList<string> lines)
    {
        ResetPeakRss();
        var ids = new List<int>(4096);
        long tokens = 0;
        foreach (var l in lines.Take(200)) { ids.Clear(); tokenizer.EncodeInto(l, ids); } // warm up
        var sw = Stopwatch.StartNew();
        foreach (var l in lines) { ids.Clear(); tokenizer.EncodeInto(l, ids); tokens += ids.Count; }
        double s = sw.Elapsed.TotalSeconds;
        return new BenchResult("tokenizer (1 thread)", "-", s, lines.Count, lines.Count / s, tokens / s, 0, 0, 0, null, PeakRss(), $"{tokens:N0} WordPiece tokens");
    }

    /// <summary>The pre-training input pipeline: tokenize documents, build NSP examples, mask and collate
    /// every batch of one epoch into tensors.</summary>
    public static BenchResult InputPipeline(BertTokenizer tokenizer, IReadOnlyList<Document> docs, int batch, int seqLen)
    {
        ResetPeakRss();
        var sw = Stopwatch.StartNew();
        var ids = PretrainingRun.Tokenize(tokenizer, docs);
        var data = new PretrainingDataOptions { MaxSeqLength = seqLen, MaxPredictionsPerSeq = 10 };
        var examples = PretrainingExamples.CreateNspExamples(ids, data, tokenizer.ClsId, tokenizer.SepId, 1);
        var config = BertConfig.FromPreset("seed", tokenizer.VocabSize);
        using var model = new BertForPreTraining(config); // the task needs one; it is not run
        var task = new PretrainingTask(model, tokenizer, examples, examples.Take(1).ToList(), data, batch, 1, staticMask: false);
        long sequences = 0;
        foreach (var b in task.TrainBatches(0, 0)) { sequences += b.Sequences; b.Dispose(); }
        double s = sw.Elapsed.TotalSeconds;
        return new BenchResult("input pipeline (pre-training)", "-", s, task.BatchesPerEpoch, sequences / s, sequences * (double)seqLen / s, 0, 0, 0, null, PeakRss(),
            $"{docs.Count} documents → {examples.Count:N0} examples, batch {batch}x{seqLen}");
    }
}
