using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;
using BertSharp.Tests.Export;
using BertSharp.Tokenization;
using BertSharp.Training;
using static BertSharp.Tests.Cli.CliRunner;
using static TorchSharp.torch;

namespace BertSharp.Tests.Tasks;

/// <summary>Long inputs of classification and similarity: their windows, how the windows' logits combine, and where the
/// setting is kept.</summary>
public class TextWindowTests
{
    static readonly BertTokenizer Tok = BertTokenizer.FromFolder(TestPaths.TinyBert);
    internal static readonly string[] Words = "the of and to in is it you that he was for on are with as his they be at one have this from or had by not but what".Split(' ');

    /// <summary>A text of <paramref name="n"/> words, one token each.</summary>
    internal static string Text(int n, int offset = 0) => string.Join(' ', Enumerable.Range(offset, n).Select(i => Words[i % Words.Length]));

    static int[] Window(int[] a, int[]? b = null) => [Tok.ClsId, .. a, Tok.SepId, .. b is null ? [] : (int[])[.. b, Tok.SepId]];

    [Fact]
    public void ALongTextIsReadInOverlappingWindowsUpToItsLastToken()
    {
        var text = Text(23);
        var ids = Tok.Encode(text);
        Assert.Equal(23, ids.Length);
        // max_seq_length 12: 10 tokens a window, 5 apart by default; the last, full, ends at the last token
        var w = TextWindows.Encode(Tok, text, null, 12, new LongInputSettings());
        Assert.Equal([Window(ids[0..10]), Window(ids[5..15]), Window(ids[10..20]), Window(ids[13..23])], w.Windows.Select(x => x.InputIds));
        Assert.All(w.Windows, x => Assert.All(x.TokenTypeIds, t => Assert.Equal(0, t)));
        Assert.Equal(0, w.TruncatedTokens);
        // a stride of the whole window: windows side by side, still to the end
        w = TextWindows.Encode(Tok, text, null, 12, new LongInputSettings { DocStride = 10 });
        Assert.Equal([Window(ids[0..10]), Window(ids[10..20]), Window(ids[13..23])], w.Windows.Select(x => x.InputIds));
        // truncate: the first window alone, 13 tokens counted as cut; a text that fits: one window either way
        w = TextWindows.Encode(Tok, text, null, 12, LongInputSettings.Truncating);
        Assert.Equal([Window(ids[0..10])], w.Windows.Select(x => x.InputIds));
        Assert.Equal(13, w.TruncatedTokens);
        Assert.Equal([Window(ids[0..10])], TextWindows.Encode(Tok, Text(10), null, 12, new LongInputSettings()).Windows.Select(x => x.InputIds));
    }

    [Fact]
    public void APairSlidesOverItsLongerTextAndKeepsTheOtherWholeWithinHalfTheWindow()
    {
        // max_seq_length 16: half the window is (16 − 3) / 2 = 6 tokens; the default stride (16 − 2) / 2 = 7
        var (a4, b20) = (Tok.Encode(Text(4)), Tok.Encode(Text(20, 7)));
        var w = TextWindows.Encode(Tok, Text(4), Text(20, 7), 16, new LongInputSettings());
        // the pair slides (9 tokens a window), the text is whole in each window
        Assert.Equal([Window(a4, b20[0..9]), Window(a4, b20[7..16]), Window(a4, b20[11..20])], w.Windows.Select(x => x.InputIds));
        Assert.All(w.Windows, x => Assert.Equal([.. Enumerable.Repeat(0, 6), .. Enumerable.Repeat(1, 10)], x.TokenTypeIds));
        Assert.Equal(0, w.TruncatedTokens);
        // the text is the longer: it slides, first in each window
        w = TextWindows.Encode(Tok, Text(20, 7), Text(4), 16, new LongInputSettings());
        Assert.Equal([Window(b20[0..9], a4), Window(b20[7..16], a4), Window(b20[11..20], a4)], w.Windows.Select(x => x.InputIds));
        // the shorter text beyond half the window is cut to it (4 tokens counted); its 7-token room is the step
        var a10 = Tok.Encode(Text(10));
        w = TextWindows.Encode(Tok, Text(10), Text(20, 7), 16, new LongInputSettings { DocStride = 9 });
        Assert.Equal([Window(a10[0..6], b20[0..7]), Window(a10[0..6], b20[7..14]), Window(a10[0..6], b20[13..20])], w.Windows.Select(x => x.InputIds));
        Assert.Equal(4, w.TruncatedTokens);
        // a tie slides over the pair, as longest_first cuts the pair first
        w = TextWindows.Encode(Tok, Text(12), Text(12, 3), 16, new LongInputSettings());
        Assert.Equal(Tok.Encode(Text(12))[0..6], w.Windows[0].InputIds[1..7]);
        Assert.Equal(6, w.TruncatedTokens);
        // truncate: HF's longest_first, and the tokens it cut
        var cut = TextWindows.Encode(Tok, Text(4), Text(20, 7), 16, LongInputSettings.Truncating);
        Assert.Equal(Tok.Encode(Text(4), Text(20, 7), 16).InputIds, Assert.Single(cut.Windows).InputIds);
        Assert.Equal(4 + 20 + 3 - 16, cut.TruncatedTokens);
    }

    [Fact]
    public void CombineTakesEachInputsMeanOrMaxOverItsWindows()
    {
        using var windows = tensor(new float[] { 1, 10, 3, -2, 5, 0, 7, 7 }, [4, 2]);   // input 0: rows 0–2; input 1: row 3
        using var mean = TextWindows.Combine(windows, [3, 1], WindowAggregation.Mean);
        Assert.Equal([3f, 8f / 3, 7f, 7f], mean.data<float>().ToArray());
        using var max = TextWindows.Combine(windows, [3, 1], WindowAggregation.Max);
        Assert.Equal([5f, 10f, 7f, 7f], max.data<float>().ToArray());
    }

    [Fact]
    public void TheSettingsTravelInConfigJsonAndAConfigWithoutThemCuts()
    {
        var config = new BertConfig();
        Assert.Same(LongInputSettings.Truncating, LongInputSettings.Of(config));
        new LongInputSettings { Aggregation = WindowAggregation.Max }.WriteTo(config, 32);
        Assert.Equal("""{"mode":"windows","doc_stride":15,"aggregation":"max"}""", config.Extra[LongInputSettings.ConfigKey]!.ToJsonString());
        Assert.Equal(new LongInputSettings { DocStride = 15, Aggregation = WindowAggregation.Max }, LongInputSettings.Of(config));
        LongInputSettings.Truncating.WriteTo(config, 32);
        Assert.True(LongInputSettings.Of(config).Truncate);
        config.Extra[LongInputSettings.ConfigKey] = JsonNode.Parse("""{"mode": "chunks"}""");
        Assert.Equal("x/config.json: bertsharp_long_inputs.mode 'chunks': expected windows or truncate",
            Assert.Throws<BertSharpException>(() => LongInputSettings.Of(config, "x/config.json")).Message);

        var e = Assert.Throws<BertSharpException>(() => new LongInputSettings { DocStride = 11 }.Validate(12));
        Assert.Equal("docStride 11 must be at least 1 and at most the 10 tokens a window of maxSeqLength 12 holds besides [CLS] and [SEP], or tokens between windows are skipped", e.Message);
        e = Assert.Throws<BertSharpException>(() => LongInputSettings.For(new FineTuneOptions { Task = "classify", Truncate = true, DocStride = 8 }));
        Assert.Equal("docStride goes with windows; truncate cuts long inputs instead", e.Message);
    }

    [Fact]
    public void ARunRecordedBeforeWindowsResumesCuttingAndANewOneWithWhatItRecorded()
    {
        var args = FineTuneArgs.Classification;
        var defaults = new FineTuneOptions { Task = "classify" };
        var used = defaults with { DocStride = 7, WindowAggregation = WindowAggregation.Max };
        var json = args.ToJson(used);
        Assert.Equal(false, json["--truncate"]!.GetValue<bool>());
        Assert.Equal("max", json["--window-aggregation"]!.GetValue<string>());
        var merged = args.Merge(defaults, defaults, json, "args.json");
        Assert.Equal((false, 7, WindowAggregation.Max), (merged.Truncate, merged.DocStride, merged.WindowAggregation));
        json.Remove("--truncate");
        json.Remove("--doc-stride");
        json.Remove("--window-aggregation");
        merged = args.Merge(defaults, defaults, json, "args.json");
        Assert.Equal((true, null, WindowAggregation.Mean), (merged.Truncate, merged.DocStride, merged.WindowAggregation));
        Assert.True(FineTuneArgs.Table.Merge(defaults with { Task = "similarity" }, defaults with { Task = "similarity" }, json, "args.json").Truncate);
    }

    [Fact]
    public void OnlyClassificationAndSimilarityReadInputsInWindows()
    {
        var e = Assert.Throws<BertSharpException>(() => FineTuneRun.Run(new FineTuneOptions
        {
            Task = "tag", Train = "train.txt", Dev = "dev.txt", Output = TestPaths.TempDir("run"), Truncate = true,
        }));
        Assert.Equal("truncate, windowAggregation and docStride go with classification and similarity (docStride also with question answering), not task 'tag'", e.Message);
    }
}

/// <summary>A model's windows in training (the loss of the combined logits, with class weights, multi-label), prediction
/// (torch and onnxruntime alike) and a fine-tuning run; a folder without the setting cuts, and says so.</summary>
[Collection(SerialCollection.Name)]   // builds and trains models: the global generator
public class WindowFineTuneTests
{
    static JsonElement Json(string s) => JsonDocument.Parse(s).RootElement;

    /// <summary>The logits of one window, alone through the model.</summary>
    static float[] WindowLogits(TaskModel m, int[] ids, int[] types) =>
        OnnxVerifier.BertSharpOutputs(m, new OnnxVerifier.PaddedBatch(ids.Select(i => (long)i).ToArray(), ids.Select(_ => 1L).ToArray(),
            types.Select(t => (long)t).ToArray(), 1, ids.Length))["logits"];

    /// <summary>The mean (or max) of the input's windows' logits, each window run alone.</summary>
    static double[] Combined(TaskModel m, string text, string? pair, LongInputSettings s)
    {
        var rows = TextWindows.Encode(m.Tokenizer, text, pair, m.MaxSeqLength, s).Windows.Select(w => WindowLogits(m, w.InputIds, w.TokenTypeIds)).ToList();
        return Enumerable.Range(0, rows[0].Length).Select(c => s.Aggregation == WindowAggregation.Max ? rows.Max(r => (double)r[c]) : rows.Average(r => (double)r[c])).ToArray();
    }

    /// <summary>A classifier folder of the tiny model read in windows of 12 tokens (10 a window, 5 apart).</summary>
    static ClassificationModel Classifier(bool multiLabel, WindowAggregation aggregation = WindowAggregation.Mean)
    {
        var m = FineTunedModel.Load<ClassificationModel>(TinyTaskFolders.Make("classify", seed: 31, multiLabel: multiLabel), new LoadOptions { MaxSeqLength = 12 });
        m.LongInputs = new LongInputSettings { Aggregation = aggregation };
        m.Model.eval();   // no dropout: the loss of the logits the forward pass gives
        return m;
    }

    static double Loss(WindowedTaskModel<ClassificationExample> m, IReadOnlyList<ClassificationExample> examples)
    {
        var features = m.Encode(examples);
        int start = 0;
        var inputs = TextWindows.WindowsPerInput(features).Select(n => { var w = features.Skip(start).Take(n).ToList(); start += n; return (IReadOnlyList<Feature>)w; }).ToList();
        using var batch = Batching.CollateInputs(inputs, m.Tokenizer.PadId, m.LabelKind);
        using var loss = m.Loss(batch).Loss;
        return loss.item<float>();
    }

    static double LogSumExp(double[] x) { double max = x.Max(); return max + Math.Log(x.Sum(v => Math.Exp(v - max))); }

    static readonly ClassificationExample[] Long =
    [
        new(TextWindowTests.Text(23), null, "yes"), new(TextWindowTests.Text(4, 3), null, "no"),
        new(TextWindowTests.Text(31, 5), null, "maybe"), new(TextWindowTests.Text(17, 9), null, "no"),
    ];

    [Theory]
    [InlineData(WindowAggregation.Mean)]
    [InlineData(WindowAggregation.Max)]
    public void TheWeightedLossOfLongInputsIsThatOfTheirCombinedLogits(WindowAggregation aggregation)
    {
        using var m = Classifier(multiLabel: false, aggregation);
        Assert.Equal(["yes", "no", "maybe"], m.Labels);
        double[] w = [1.0, 5.0, 0.5];
        m.ClassWeights = w;
        // PyTorch's CrossEntropyLoss(weight=w) on each input's combined logits: Σ w[yᵢ]·(−log softmax(zᵢ)[yᵢ]) / Σ w[yᵢ]
        double num = 0, den = 0;
        foreach (var e in Long)
        {
            var z = Combined(m, e.Text, null, m.LongInputs);
            int y = m.Labels.ToList().IndexOf(e.Label!);
            num += w[y] * (LogSumExp(z) - z[y]);
            den += w[y];
        }
        Assert.Equal(num / den, Loss(m, Long), 1e-5);
        Assert.Equal(new InputCounts(4, 3, 4 + 6 + 3, 0, 0), m.TrainingInputs);   // 23, 31 and 17 tokens: 4, 6 and 3 windows
        // prediction: the softmax of the same combined logits
        var p = m.Predict(Long[2].Text);
        var z2 = Combined(m, Long[2].Text, null, m.LongInputs);
        Assert.Equal(Math.Exp(z2[2] - LogSumExp(z2)), p.Probabilities["maybe"], 1e-5);
        Assert.Equal(6, p.Windows);
    }

    [Fact]
    public void ATrainingBatchHoldsWholeInputsWithAllTheirWindows()
    {
        using var m = Classifier(multiLabel: false);
        var features = m.Encode(Long);
        var task = new FineTuningTask<ClassificationExample>(m, features, [], batchSize: 2, seed: 1);
        Assert.Equal(2, task.BatchesPerEpoch);   // 4 inputs, not 14 windows
        var seen = new List<long>();
        foreach (var batch in task.TrainBatches(epoch: 0, start: 0))
            using (batch)
            {
                var windows = batch[Batching.WindowsPerInput].data<long>().ToArray();
                Assert.Equal(2, windows.Length);
                Assert.Equal(windows.Sum(), batch["input_ids"].shape[0]);
                Assert.Equal(windows.Length, batch["labels"].shape[0]);
                seen.AddRange(windows);
            }
        Assert.Equal([1L, 3, 4, 6], seen.Order());
    }

    [Fact]
    public void AMultiLabelInputsProbabilitiesAreTheSigmoidsOfItsCombinedLogits()
    {
        using var m = Classifier(multiLabel: true);
        var examples = Long.Select((e, i) => e with { Label = null, Labels = i % 2 == 0 ? ["yes", "maybe"] : ["no"] }).ToList();
        double[] posWeight = [3.0, 1.0, 0.25];
        m.ClassWeights = posWeight;
        // BCEWithLogitsLoss(pos_weight) on the combined logits: mean over inputs × labels of −(w·y·log σ(z) + (1 − y)·log(1 − σ(z)))
        double sum = 0;
        foreach (var e in examples)
        {
            var z = Combined(m, e.Text, null, m.LongInputs);
            for (int c = 0; c < 3; c++)
            {
                double s = 1 / (1 + Math.Exp(-z[c]));
                sum -= e.Labels!.Contains(m.Labels[c]) ? posWeight[c] * Math.Log(s) : Math.Log(1 - s);
            }
        }
        Assert.Equal(sum / (examples.Count * 3), Loss(m, examples), 1e-5);
        var p = m.Predict(examples[0].Text);
        var z0 = Combined(m, examples[0].Text, null, m.LongInputs);
        for (int c = 0; c < 3; c++) Assert.Equal(1 / (1 + Math.Exp(-z0[c])), p.Probabilities[m.Labels[c]], 1e-5);
    }

    [Theory]
    [InlineData(WindowAggregation.Mean)]
    [InlineData(WindowAggregation.Max)]
    public void ALongPairsSimilarityIsTheMeanOrMaxOfItsWindowsScores(WindowAggregation aggregation)
    {
        using var m = FineTunedModel.Load<SimilarityModel>(TinyTaskFolders.Make("similarity", seed: 32), new LoadOptions { MaxSeqLength = 16 });
        m.LongInputs = new LongInputSettings { Aggregation = aggregation };
        string a = TextWindowTests.Text(5), b = TextWindowTests.Text(26, 4);
        var p = (SimilarityPrediction)m.Predict([new PredictInput(a, b)])[0];
        Assert.Equal(Combined(m, a, b, m.LongInputs)[0], p.Score, 1e-5);
        Assert.Equal(4, p.Windows);   // 8 of the pair's tokens a window, 7 apart
        var score = m.Score([new SimilarityExample(a, b, 3.0), new SimilarityExample(a, "the", 1.0)]);
        Assert.Equal(new InputCounts(2, 1, 4, 0, 0), score.Inputs);
        Assert.Contains("long inputs: 1 of 2 examples longer than max_seq_length 16 read in 4 windows", score.Report);
    }

    /// <summary>Documents of 31 words: 30 common words, and "dog" (label animal) or "red" (label color) among words 21–28,
    /// past the first window of 16 tokens.</summary>
    static void WriteLongDocuments(string dir)
    {
        var r = new Random(1);
        foreach (var (name, n) in new[] { ("train.tsv", 48), ("dev.tsv", 16) })
        {
            var lines = new List<string> { "text\tlabel" };
            for (int i = 0; i < n; i++)
            {
                var words = Enumerable.Range(0, 30).Select(_ => TextWindowTests.Words[r.Next(TextWindowTests.Words.Length)]).ToList();
                words.Insert(20 + r.Next(8), i % 2 == 0 ? "dog" : "red");
                lines.Add($"{string.Join(' ', words)}\t{(i % 2 == 0 ? "animal" : "color")}");
            }
            File.WriteAllLines(Path.Combine(dir, name), lines);
        }
    }

    [Fact]
    public void AClassifierLearnsALabelThatOnlyTheTailOfEachDocumentShows()
    {
        var dir = TestPaths.TempDir("ft-windows");
        WriteLongDocuments(dir);
        string train = Path.Combine(dir, "train.tsv"), dev = Path.Combine(dir, "dev.tsv");
        FineTuneOptions Options(string run, bool truncate) => new()
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = train, Dev = dev, Output = Path.Combine(dir, run), Truncate = truncate,
            MaxSeqLength = 16, Epochs = 30, BatchSize = 8, LearningRate = 3e-3, Seed = 1,
        };
        var windows = FineTuneRun.Run(Options("windows", truncate: false));
        var score = windows.Final[0].Score;
        Assert.Equal(1.0, score.Metrics["accuracy"]);
        Assert.Equal(new InputCounts(16, 16, 64, 0, 0), score.Inputs);   // 31 tokens: windows from 0, 7, 14 and 17 (the last ends at the last token)
        // cut to its first 14 tokens, no document shows its label: the same model learns no better than chance
        var cut = FineTuneRun.Run(Options("truncate", truncate: true));
        Assert.True(cut.Final[0].Score.Metrics["accuracy"] <= 0.75, $"accuracy {cut.Final[0].Score.Metrics["accuracy"]} when cut");
        Assert.Equal(new InputCounts(16, 0, 0, 16, 16 * (31 + 2 - 16)), cut.Final[0].Score.Inputs);

        // the run records what it did: args.json, config.json (what predict, evaluate and serve read), results.json
        string run = windows.RunFolder;
        var args = Json(File.ReadAllText(Path.Combine(run, "args.json")));
        Assert.False(args.GetProperty("--truncate").GetBoolean());
        Assert.Equal(7, args.GetProperty("--doc-stride").GetInt32());
        Assert.Equal("""{"mode":"windows","doc_stride":7,"aggregation":"mean"}""",
            JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))![LongInputSettings.ConfigKey]!.ToJsonString());
        var results = Json(File.ReadAllText(Path.Combine(run, "results.json")));
        Assert.Equal(192, results.GetProperty("train").GetProperty("inputs").GetProperty("windows").GetInt32());
        Assert.Equal(16, results.GetProperty("dev").GetProperty("inputs").GetProperty("windowed").GetInt32());
        Assert.Equal(16, File.ReadLines(Path.Combine(run, "predictions_dev.jsonl")).Count());
        Assert.Equal(16, Json(File.ReadAllText(Path.Combine(cut.RunFolder, "results.json"))).GetProperty("dev").GetProperty("inputs").GetProperty("truncated").GetInt32());

        // a new document whose label word is its last: torch and onnxruntime read it in the same windows, alike
        string document = TextWindowTests.Text(33) + " dog";
        using (var torch = FineTunedModel.Load<ClassificationModel>(run))
        using (var onnx = FineTunedModel.Load<ClassificationModel>(run, new LoadOptions { Engine = InferenceEngine.OnnxRuntime }))
        {
            var (a, b) = (torch.Predict(document), onnx.Predict(document));
            Assert.Equal("animal", a.Label);
            Assert.Equal(4, a.Windows);   // 34 tokens: windows from 0, 7, 14 and 20
            Assert.Equal(a.Windows, b.Windows);
            foreach (var (label, p) in a.Probabilities) Assert.Equal(p, b.Probabilities[label], 1e-5);
        }
        // another max_seq_length at prediction: the stride follows it (half its window)
        using (var longer = FineTunedModel.Load<ClassificationModel>(run, new LoadOptions { MaxSeqLength = 24 }))
            Assert.Equal(11, longer.LongInputs.StrideFor(longer.MaxSeqLength));

        var ev = Run("evaluate", run, "--data", dev, "--json");
        Assert.True(ev.Code == 0, ev.Err);
        Assert.Equal(1.0, Json(ev.Out).GetProperty("metrics").GetProperty("accuracy").GetDouble());
        Assert.Contains("long inputs: 16 of 16 examples longer than max_seq_length 16 read in 64 windows", ev.Err);
        var pr = Run("predict", run, document);
        Assert.True(pr.Code == 0, pr.Err);
        Assert.Equal(4, Json(pr.Out).GetProperty("windows").GetInt32());
        Assert.Equal("animal", Json(pr.Out).GetProperty("label").GetString());
        Assert.Contains("note: 1 inputs longer than 16 tokens were read in 4 windows", pr.Err);
    }

    [Fact]
    public void AResumedRunReadsTheSameWindowsInTheSameBatches()
    {
        var dir = TestPaths.TempDir("ft-windows-resume");
        var r = new Random(3);
        foreach (var (name, n) in new[] { ("train.tsv", 24), ("dev.tsv", 8) })
            File.WriteAllLines(Path.Combine(dir, name), Enumerable.Range(0, n).Select(i =>
                $"{TextWindowTests.Text(3 + r.Next(20), r.Next(30))}\t{TextWindowTests.Text(2 + r.Next(4), r.Next(30))}\t{r.Next(0, 51) / 10.0:F1}").Prepend("sentence1\tsentence2\tscore"));
        FineTuneOptions Options(string output) => new()
        {
            Task = "similarity", Output = output, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Model = TestPaths.TinyBert,
            BatchSize = 4, MaxSeqLength = 12, LearningRate = 1e-3, Epochs = 2, EvalEvery = 3, Seed = 9, WindowAggregation = WindowAggregation.Max,
        };
        var straight = FineTuneRun.Run(Options(Path.Combine(dir, "straight")));
        Assert.True(straight.Final[0].Score.Inputs!.Windowed > 0);
        var expected = Pretraining.ResumeTests.TrainLosses(straight.RunFolder);
        string stopped = Path.Combine(dir, "stopped");
        using var cts = new CancellationTokenSource();
        Assert.False(FineTuneRun.Run(Options(stopped), new TrainingEvents { Step = s => { if (s.Step == 5) cts.Cancel(); } }, cts.Token).Completed);
        var resumed = FineTuneRun.Run(new FineTuneOptions { Task = "similarity", Output = stopped, Resume = true });
        Assert.True(resumed.Completed);
        Assert.Equal((WindowAggregation.Max, 5), (resumed.Options.WindowAggregation, resumed.Options.DocStride));
        var losses = Pretraining.ResumeTests.TrainLosses(stopped);
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step], 1e-5);
    }

    [Fact]
    public void AFolderWithoutTheSettingCutsLongInputsAndSaysHowMuch()
    {
        string dir = TinyTaskFolders.Make("classify", seed: 33);   // as fine-tuned before windows (or with transformers)
        using (var m = FineTunedModel.Load<ClassificationModel>(dir))
        {
            Assert.True(m.LongInputs.Truncate);
            Assert.True(m.CutsLongInputs);
            var p = m.Predict(TextWindowTests.Text(70));
            Assert.Equal((1, 70 + 2 - 64), (p.Windows, p.TruncatedTokens));
        }
        var pr = Run("predict", dir, TextWindowTests.Text(70), "the");
        Assert.True(pr.Code == 0, pr.Err);
        var lines = pr.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Json).ToList();
        Assert.Equal(8, lines[0].GetProperty("truncated_tokens").GetInt32());
        Assert.False(lines[1].TryGetProperty("truncated_tokens", out _));
        Assert.Contains("note: 1 inputs were cut to 64 tokens, 8 tokens in all", pr.Err);
    }

    [Fact]
    public void TheCommandsHelpAndErrorsNameTheOptions()
    {
        foreach (var task in new[] { "classify", "similarity" })
        {
            var help = Run("finetune", task, "--help").Out;
            foreach (var option in new[] { "--truncate", "--doc-stride", "--window-aggregation" }) Assert.Contains(option, help);
            Assert.Contains("Long inputs: a text (or pair) longer than --max-seq-length is read in overlapping windows", help);
        }
        Assert.DoesNotContain("--window-aggregation", Run("finetune", "tag", "--help").Out);
        var dir = TestPaths.TempDir("ft-windows-cli");
        CliFineTuneTests.WriteClassification(dir);
        string F(string n) => Path.Combine(dir, n);
        var (code, _, err) = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"),
            "--output", F("run"), "--max-seq-length", "12", "--doc-stride", "11");
        Assert.Equal(1, code);
        Assert.Equal("error: --doc-stride 11 must be at least 1 and at most the 10 tokens a window of --max-seq-length 12 holds besides [CLS] and [SEP], or tokens between windows are skipped", err.Trim().Split('\n')[^1]);
        (code, _, err) = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"),
            "--output", F("run2"), "--max-seq-length", "12", "--max-steps", "1");
        Assert.True(code == 0, err);
        Assert.Contains("long inputs: windows of max_seq_length 12, 5 tokens apart (doc_stride), predicting by the mean of their logits", err);
        Assert.Matches(@"training: \d+ of 16 examples longer than max_seq_length 12 read in \d+ windows(; \d+ of 16 examples cut, by \d+ tokens in all)?; dev: ", err);
    }
}
