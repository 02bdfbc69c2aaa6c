using System.CommandLine;
using System.Text.Json;
using BertSharp.Benchmarking;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Tokenization;
using static TorchSharp.torch;

namespace BertSharp.Cli.Commands;

public static class BenchCommand
{
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static Command Build(CommandContext ctx)
    {
        var json = new Option<bool>("--json") { Description = "Write the results as JSON to stdout", Recursive = true };
        var preset = new Option<string>("--model-preset") { Description = "Model size (see bert pretrain --help)", DefaultValueFactory = _ => "seed" };
        var batch = new Option<int?>("--batch-size") { Description = "Sequences per step (default: 512 for seed, 8 for the other presets)" };
        var seqLen = new Option<int?>("--max-seq-length") { Description = "Tokens per sequence (default: 64 for seed, 128 for the other presets)" };
        var steps = new Option<long>("--steps") { Description = "Timed steps (after 2 warm-up steps)", DefaultValueFactory = _ => 10 };
        var vocabSize = new Option<int?>("--vocab-size") { Description = "Vocabulary size (default: 20,256 for seed, as in the seed project; 30,522, BERT's uncased, for the other presets)" };
        var predictions = new Option<int?>("--mlm-predictions") { Description = "Masked positions per sequence (default: 10 for seed, 20 for the other presets)" };
        // The options given, else the preset's shape (BenchShape).
        (BertConfig Config, BenchShape Shape) Resolve(ParseResult r)
        {
            string name = r.GetValue(preset)!;
            var d = BenchShape.For(name);
            var shape = new BenchShape(r.GetValue(batch) ?? d.BatchSize, r.GetValue(seqLen) ?? d.SeqLength,
                r.GetValue(vocabSize) ?? d.VocabSize, r.GetValue(predictions) ?? d.MlmPredictions);
            return (BertConfig.FromPreset(name, shape.VocabSize), shape);
        }
        var dataDir = new Option<string?>("--data-dir") { Description = "Dataset folder holding wikitext-2 (for the input-pipeline rows)" };

        var train = new Command("train", "Time pre-training steps on synthetic batches") { preset, batch, seqLen, steps, vocabSize, predictions };
        train.SetAction(r =>
        {
            var (config, shape) = Resolve(r);
            var device = TorchRuntime.ParseDevice(r.GetValue(Cli.Device)!);
            return Print(ctx, r.GetValue(json), new[] { Benchmarks.TrainStep(config, shape.BatchSize, shape.SeqLength, shape.MlmPredictions,
                Cli.Compute(r).Dtype, r.GetValue(steps), device) }, device, withPeak: true, precision: Cli.PrecisionOf(r));
        });

        var model = new Option<string?>("--model") { Description = "Time this model (folder or Hub id) on the texts of --input instead of a synthetic preset: tokenize, forward, pooling or head" };
        var input = new Option<string?>("--input") { Description = "With --model: inputs, one per line (a tab between the two texts of a pair, or JSON as bert predict reads)" };
        var rounds = new Option<int>("--rounds") { Description = "With --model: timed passes over the inputs (engines alternate round by round)", DefaultValueFactory = _ => 3 };
        var maxInputs = new Option<int?>("--max-inputs") { Description = "With --model: use only the first N inputs" };
        var engine = new Option<string>("--engine") { Description = "With --model: what runs BertSharp's forward: torch or onnxruntime (the model exported to ONNX at load)", DefaultValueFactory = _ => "torch" };
        var onnx = new Option<string?>("--onnx") { Description = "With --model: also run ONNX Runtime on this model.onnx (e.g. from bert export onnx), on the same inputs in the same process, rounds alternating" };
        var infer = new Command("infer", "Time inference: a synthetic preset (sequence classification), or a real model on real text (--model, --input)")
            { preset, batch, seqLen, steps, vocabSize, model, input, rounds, maxInputs, onnx, engine };
        infer.SetAction(r =>
        {
            if (r.GetValue(model) is { } modelArg)
                return InferModel(ctx, r, ModelArgument.Resolve(ctx, modelArg), r.GetValue(input) ?? throw new BertSharpException("--model needs --input (the texts to run)"),
                    r.GetValue(batch) ?? 32, r.GetValue(rounds), r.GetValue(maxInputs), r.GetValue(onnx), r.GetValue(engine)!, r.GetValue(json));
            var (config, shape) = Resolve(r);
            var device = TorchRuntime.ParseDevice(r.GetValue(Cli.Device)!);
            return Print(ctx, r.GetValue(json), new[] { Benchmarks.Inference(config, shape.BatchSize, shape.SeqLength, Cli.Compute(r).Dtype,
                r.GetValue(steps), device) }, device, withPeak: true, precision: Cli.PrecisionOf(r));
        });

        var cmd = new Command("bench", "Measure this machine: matmul peak, training and inference throughput with MFU, the input pipeline; no subcommand runs the whole table")
            { json, dataDir, train, infer };
        cmd.SetAction(r =>
        {
            var device = TorchRuntime.ParseDevice(r.GetValue(Cli.Device)!);
            return Print(ctx, r.GetValue(json), All(ctx, r.GetValue(dataDir), device), device, withPeak: false, precision: "fp32");
        });
        return cmd;
    }

    /// <summary>`bench infer --model`: a real model's inference on the lines of a file, engine by engine.</summary>
    static int InferModel(CommandContext ctx, ParseResult r, string modelDir, string inputPath, int batchSize, int rounds, int? maxInputs, string? onnxPath, string engineName, bool json)
    {
        using var reader = TextLineReader.Open(inputPath, keepTabs: true);
        var inputs = new List<Tasks.PredictInput>();
        while (reader.TryReadLine(out var line) && (maxInputs is not int m || inputs.Count < m))
            if (!string.IsNullOrWhiteSpace(line)) inputs.Add(PredictCommand.Parse(line, reader));
        using var taskModel = Inference.FineTunedModel.Load(modelDir, new Inference.LoadOptions { Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)!, Engine = engineName });
        taskModel.BatchSize = batchSize;
        var engines = new List<InferenceComparison.Engine> { new($"BertSharp ({engineName}, {Cli.PrecisionOf(r)})", b => taskModel.Predict(b)) };
        using var runner = onnxPath is null ? null : new Export.OnnxModelRunner(onnxPath, TorchSharp.torch.get_num_threads());
        if (runner != null) engines.Add(new("ONNX Runtime", b => RunOnnx(runner, taskModel, b)));
        var timings = InferenceComparison.Run(engines, inputs, batchSize, rounds);
        if (json)
        {
            ctx.Out.WriteLine(JsonSerializer.Serialize(timings, JsonOptions));
            return 0;
        }
        ctx.Out.WriteLine($"{modelDir} ({taskModel.TaskName}), {inputs.Count} inputs from {inputPath}, batch {batchSize}, {rounds} rounds, {TorchSharp.torch.get_num_threads()} thread(s)");
        ctx.Out.WriteLine($"{"engine",-28} {"seq/s",9} {"p50 ms",9} {"p99 ms",9} {"peak RSS",10}  rounds (seq/s)");
        foreach (var t in timings)
            ctx.Out.WriteLine($"{t.Engine,-28} {t.SequencesPerSecond,9:F1} {t.P50Ms,9:F2} {t.P99Ms,9:F2} {t.PeakRssBytes / 1048576.0,8:F0} MB  {string.Join(" ", t.RoundRates.Select(x => x.ToString("F1")))}");
        if (timings.Count == 2)
            ctx.Out.WriteLine($"BertSharp / ONNX Runtime: throughput {timings[0].SequencesPerSecond / timings[1].SequencesPerSecond:F2}x, p50 latency {timings[0].P50Ms / timings[1].P50Ms:F2}x (above 1 is slower)");
        return 0;
    }

    /// <summary>ONNX Runtime's side of a batch: the same tokenization (BertSharp's tokenizer, the model's length), padded
    /// to the batch's longest input, run, outputs copied out (the exported graph holds the head or pooling).</summary>
    static void RunOnnx(Export.OnnxModelRunner runner, Tasks.TaskModel model, IReadOnlyList<Tasks.PredictInput> batch)
    {
        var encodings = batch.Select(i => model.Tokenizer.Encode(i.Text, i.Pair, model.MaxSeqLength)).ToList();
        runner.Run(encodings.Select(e => e.InputIds).ToList(), encodings.Select(e => e.TokenTypeIds).ToList(), model.Tokenizer.PadId);
    }

    static List<BenchResult> All(CommandContext ctx, string? dataDir, Device device)
    {
        var results = new List<BenchResult>();
        void Add(BenchResult r) { results.Add(r); ctx.Err.WriteLine($"  {r.Name} [{r.Precision}]: {Summary(r)}"); }
        var fp32 = Benchmarks.MatmulPeak(ScalarType.Float32, device: device); Add(fp32);
        var bf16 = Benchmarks.MatmulPeak(ScalarType.BFloat16, device: device); Add(bf16);
        var (seedShape, baseShape) = (BenchShape.For("seed"), BenchShape.For("base"));
        var seed = BertConfig.FromPreset("seed", seedShape.VocabSize);
        var baseConfig = BertConfig.FromPreset("base", baseShape.VocabSize);
        foreach (var (p, peak) in new[] { (ScalarType.Float32, fp32), (ScalarType.BFloat16, bf16) })
        {
            Add(WithMfu(Benchmarks.TrainStep(seed, seedShape.BatchSize, seedShape.SeqLength, seedShape.MlmPredictions, p, 5, device), fp32, peak));
            Add(WithMfu(Benchmarks.TrainStep(baseConfig, baseShape.BatchSize, baseShape.SeqLength, baseShape.MlmPredictions, p, 5, device), fp32, peak));
            Add(WithMfu(Benchmarks.Inference(baseConfig, baseShape.BatchSize, baseShape.SeqLength, p, 5, device), fp32, peak));
            Add(WithMfu(Benchmarks.Inference(baseConfig, 1, baseShape.SeqLength, p, 10, device), fp32, peak));
        }
        double diff = Benchmarks.Bf16LogitsMaxDiff(baseConfig, baseShape.BatchSize, baseShape.SeqLength);
        ctx.Err.WriteLine($"  base inference logits, bf16 vs fp32: max |diff| = {diff:G3}");
        results.Add(new BenchResult("base logits bf16 vs fp32 max |diff|", "bf16", 0, 1, 0, 0, 0, 0, diff, null, 0, $"classification logits, batch {baseShape.BatchSize}x{baseShape.SeqLength}"));

        var valid = WikiText2.TryLocate(dataDir, "valid");
        if (valid == null) ctx.Err.WriteLine("  (input pipeline rows skipped: WikiText-2 not found; give --data-dir or set BERTSHARP_DATA_DIR)");
        else
        {
            var docs = CorpusReader.Read(valid).ToList();
            var vocab = VocabularyBuilder.Learn(docs.SelectMany(d => d.Sentences), new WordPieceTrainerOptions { VocabSize = 20256 });
            var tokenizer = new BertTokenizer(vocab);
            Add(Benchmarks.Tokenizer(tokenizer, docs.SelectMany(d => d.Sentences).ToList()));
            Add(Benchmarks.InputPipeline(tokenizer, docs, 512, 64));
        }
        return results;
    }

    static BenchResult WithMfu(BenchResult r, BenchResult fp32Peak, BenchResult ownPeak) =>
        r with { Mfu = r.AchievedGflops / fp32Peak.AchievedGflops, Detail = r.Detail + $"; {r.AchievedGflops / ownPeak.AchievedGflops:P0} of the {ownPeak.Precision} peak" };

    static string Summary(BenchResult r) => r.Name.StartsWith("matmul")
        ? $"{r.AchievedGflops:F1} GFLOP/s"
        : $"{r.SequencesPerSecond:F1} seq/s, {r.TokensPerSecond:N0} tokens/s" + (r.FlopsPerIteration > 0 ? $", {r.LatencyMs:F1} ms/step, {r.AchievedGflops:F1} GFLOP/s" : "") + (r.Mfu is double m ? $", MFU {m:P1}" : "");

    static int Print(CommandContext ctx, bool json, IReadOnlyList<BenchResult> results, Device device, bool withPeak, string precision)
    {
        var list = results.ToList();
        if (withPeak)
        {
            var peak = Benchmarks.MatmulPeak(ScalarType.Float32, device: device);
            list = list.Select(r => r with { Mfu = r.AchievedGflops / peak.AchievedGflops }).Prepend(peak).ToList();
        }
        if (json)
        {
            ctx.Out.WriteLine(JsonSerializer.Serialize(list, JsonOptions));
            return 0;
        }
        ctx.Out.WriteLine($"{"benchmark",-44} {"prec",-5} {"seq/s",10} {"tokens/s",12} {"ms/step",9} {"GFLOP/s",9} {"MFU",7} {"peak RSS",10}");
        foreach (var r in list)
            ctx.Out.WriteLine($"{r.Name,-44} {r.Precision,-5} {r.SequencesPerSecond,10:F1} {r.TokensPerSecond,12:N0} {r.LatencyMs,9:F1} {r.AchievedGflops,9:F1} {(r.Mfu is double m ? m.ToString("P1") : ""),7} {r.PeakRssBytes / 1048576.0,8:F0} MB");
        foreach (var r in list.Where(r => r.Detail.Length > 0)) ctx.Out.WriteLine($"  {r.Name} [{r.Precision}]: {r.Detail}");
        return 0;
    }
}
