using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tests.Export;
using BertSharp.Training;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Tasks;

/// <summary>Multi-label data: a label cell of labels separated by commas, or a JSONL list.</summary>
public class MultiLabelDataTests
{
    static readonly DataFileOptions Multi = new() { MultiLabel = true };

    [Fact]
    public void ATableCellHoldsLabelsSeparatedByCommas()
    {
        using var d = new TempDir();
        var path = d.Write("train.tsv", "text\tlabels\nthe dog\tanimal\nred dog\t animal , color,animal\nnothing\t\n");
        var set = ClassificationData.Read(path, Multi);
        Assert.Equal([["animal"], ["animal", "color"], []], set.Examples.Select(e => e.Labels!.ToArray()));
        Assert.All(set.Examples, e => Assert.Null(e.Label));
        Assert.Contains($"{path}: multi-label, 1.00 labels per example, 1 examples with none", set.Notes);
        // single-label, the same cell is one label of its own
        Assert.Equal("animal , color,animal", ClassificationData.Read(path, new DataFileOptions { MaxExamples = 2 }).Examples[1].Label);
        var csv = d.Write("train.csv", "text,labels\nred dog,\"animal,color\"\n");
        Assert.Equal(["animal", "color"], ClassificationData.Read(csv, Multi).Examples[0].Labels!);
    }

    [Fact]
    public void AJsonlLabelIsAListOrAString()
    {
        using var d = new TempDir();
        var path = d.Write("train.jsonl", """
            {"text": "a", "labels": ["x", "y"]}
            {"text": "b", "labels": []}
            {"text": "c", "labels": "x, z"}
            {"text": "d", "labels": [3, "x"]}
            """);
        Assert.Equal([["x", "y"], [], ["x", "z"], ["3", "x"]], ClassificationData.Read(path, Multi).Examples.Select(e => e.Labels!.ToArray()));
        // a list without multiLabel names the option; a list of objects names the line
        var e = Assert.Throws<BertSharpException>(() => ClassificationData.Read(path, new DataFileOptions()));
        Assert.Equal($"{path}:1: the label in 'labels' is a list; a list of labels is multi-label data (give multiLabel)", e.Message);
        Assert.Equal(["multiLabel"], e.Parameters);
        var bad = d.Write("bad.jsonl", "{\"text\": \"a\", \"labels\": [\"x\"]}\n{\"text\": \"b\", \"labels\": [{\"x\": 1}]}\n");
        Assert.Equal($"{bad}:2: the labels in 'labels' must be strings or numbers", Assert.Throws<BertSharpException>(() => ClassificationData.Read(bad, Multi)).Message);
        var (code, _, err) = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", path, "--dev", path, "--output", d.File("run"));
        Assert.Equal(1, code);
        Assert.Equal($"error: {path}:1: the label in 'labels' is a list; a list of labels is multi-label data (give --multi-label)", err.Trim());
    }

    [Fact]
    public void OnlyClassificationTakesMultiLabelOrClassWeights()
    {
        var e = Assert.Throws<BertSharpException>(() => FineTuneRun.Run(new FineTuneOptions
        {
            Task = "similarity", Train = "sts-train.csv", Dev = "sts-dev.csv", Output = TestPaths.TempDir("run"), ClassWeights = "auto",
        }));
        Assert.Equal("multiLabel and classWeights go with classification, not task 'similarity'", e.Message);
    }
}

/// <summary>--class-weights: "auto" and a weights file.</summary>
public class ClassWeightTests
{
    static ClassificationExample One(string label) => new("t", null, label);
    static ClassificationExample Set(params string[] labels) => new("t", null, null) { Labels = labels };

    [Fact]
    public void AutoIsScikitLearnsBalancedAndMultiLabelPosWeightIsNegativesOverPositives()
    {
        // n_samples / (n_classes · count): 10 / (3 · 6), 10 / (3 · 3), 10 / (3 · 1)
        var single = Enumerable.Repeat("a", 6).Concat(Enumerable.Repeat("b", 3)).Append("c").Select(One).ToList();
        Assert.Equal([10.0 / 18, 10.0 / 9, 10.0 / 3], ClassWeighting.Balanced(single, ["a", "b", "c"], multiLabel: false));
        // a on 3 of 4 examples: 1 / 3; b on 1: 3 / 1; c on all: nothing to balance, 1
        var multi = new[] { Set("a", "c"), Set("a", "b", "c"), Set("c"), Set("a", "c") };
        Assert.Equal([1.0 / 3, 3.0, 1.0], ClassWeighting.Balanced(multi, ["a", "b", "c"], multiLabel: true));
        Assert.Equal([10.0 / 18, 10.0 / 9, 10.0 / 3], ClassWeighting.Resolve(new FineTuneOptions { Task = "classify", ClassWeights = "auto" }, single, ["a", "b", "c"], false)!);
        Assert.Null(ClassWeighting.Resolve(new FineTuneOptions { Task = "classify" }, single, ["a", "b", "c"], false));
    }

    [Fact]
    public void AFileMapsLabelsToWeightsAndItsErrorsNameFileAndLine()
    {
        using var d = new TempDir();
        string[] labels = ["a", "b", "very good"];
        var path = d.Write("w.tsv", "# weights\nb\t2.5\n\nvery good 4\r\n");
        Assert.Equal([1.0, 2.5, 4.0], ClassWeighting.Read(path, labels));
        void Fails(string text, string message)
        {
            var p = d.Write("bad.tsv", text);
            Assert.Equal($"{p}:{message}", Assert.Throws<BertSharpException>(() => ClassWeighting.Read(p, labels)).Message);
        }
        Fails("a\t2\nzz\t1\n", "2: unknown label 'zz' (the training labels: a, b, very good)");
        Fails("a\tx\n", "1: the weight of 'a', 'x', is not a number");
        Fails("a\t-1\n", "1: the weight of 'a' must be a positive number, got -1");
        Fails("a\t1\n\na\t2\n", "3: 'a' is weighed twice (first on line 1)");
        Fails("a\n", "1: expected 'label<TAB>weight', got 'a'");
        Assert.Equal($"{d.File("none.tsv")}: file not found", Assert.Throws<BertSharpException>(() => ClassWeighting.Read(d.File("none.tsv"), labels)).Message);
        var e = Assert.Throws<BertSharpException>(() => ClassWeighting.FromValues(new Dictionary<string, double> { ["zz"] = 1 }, labels));
        Assert.Equal("classWeights: unknown label 'zz' (the training labels: a, b, very good)", e.Message);
    }

    [Fact]
    public void ArgsJsonRecordsTheWeightsThemselvesAndMergesThemBack()
    {
        var args = FineTuneArgs.Classification;
        var used = new FineTuneOptions { Task = "classify", ClassWeights = "w.tsv", ClassWeightValues = new Dictionary<string, double> { ["a"] = 1, ["b"] = 2.5 } };
        var json = args.ToJson(used);
        Assert.Equal("""{"a":1,"b":2.5}""", json["--class-weights"]!.ToJsonString());
        var defaults = new FineTuneOptions { Task = "classify" };
        var merged = args.Merge(defaults, defaults, json, "args.json");
        Assert.Equal(used.ClassWeightValues, merged.ClassWeightValues);
        Assert.Equal("auto", args.Merge(defaults with { ClassWeights = "auto" }, defaults, json, "args.json").ClassWeights);   // given on the command line: it wins
        json["--class-weights"] = new System.Text.Json.Nodes.JsonObject { ["a"] = "heavy" };
        Assert.StartsWith("args.json: \"--class-weights\" has the value {\"a\":\"heavy\"}", Assert.Throws<BertSharpException>(() => args.Merge(defaults, defaults, json, "args.json")).Message);
    }
}

/// <summary>The loss with class weights against hand computation on the model's own probabilities, and the
/// multi-label model a transformers folder is.</summary>
[Collection(SerialCollection.Name)]   // builds models: the global generator
public class ClassificationLossTests
{
    static ClassificationModel Classifier(bool multiLabel) =>
        FineTunedModel.Load<ClassificationModel>(TinyTaskFolders.Make("classify", seed: 21, multiLabel: multiLabel));

    static double Loss(ClassificationModel m, IReadOnlyList<ClassificationExample> examples)
    {
        m.Model.eval();   // no dropout: the loss of the probabilities Predict gives
        using var batch = Batching.Collate(m.Encode(examples), m.Tokenizer.PadId, m.LabelKind);
        using var loss = m.Loss(batch).Loss;
        return loss.item<float>();
    }

    [Fact]
    public void WeightedCrossEntropyIsTheWeightedMeanOfTheExamplesLosses()
    {
        using var m = Classifier(multiLabel: false);
        Assert.Equal(["yes", "no", "maybe"], m.Labels);
        ClassificationExample[] examples = [new("the dog", null, "yes"), new("red of the", null, "no"), new("one", null, "maybe"), new("the the", null, "no")];
        var p = m.Predict(examples.Select(e => (e.Text, (string?)null)).ToList());
        double[] w = [1.0, 5.0, 0.5];
        // PyTorch's CrossEntropyLoss(weight=w): Σ w[yᵢ]·(−log pᵢ[yᵢ]) / Σ w[yᵢ]
        double num = 0, den = 0, plain = 0;
        for (int i = 0; i < examples.Length; i++)
        {
            double wi = w[m.Labels.ToList().IndexOf(examples[i].Label!)], nll = -Math.Log(p[i].Probabilities[examples[i].Label!]);
            num += wi * nll; den += wi; plain += nll / examples.Length;
        }
        Assert.Equal(plain, Loss(m, examples), 1e-5);
        m.ClassWeights = w;
        Assert.Equal(num / den, Loss(m, examples), 1e-5);
        Assert.True(Math.Abs(num / den - plain) > 1e-3, "the weights should change the loss");
    }

    [Fact]
    public void MultiLabelLossIsBinaryCrossEntropyWithAPosWeightPerLabel()
    {
        using var m = Classifier(multiLabel: true);
        ClassificationExample[] examples = [new("the dog", null, null) { Labels = ["yes", "no"] }, new("red", null, null) { Labels = ["maybe"] }, new("one of", null, null) { Labels = [] }];
        var p = m.Predict(examples.Select(e => (e.Text, (string?)null)).ToList());
        double Expected(double[] posWeight)
        {
            // BCEWithLogitsLoss(pos_weight): mean over examples × labels of −(w·y·log σ + (1 − y)·log(1 − σ))
            double sum = 0;
            for (int i = 0; i < examples.Length; i++)
                for (int c = 0; c < 3; c++)
                {
                    double prob = p[i].Probabilities[m.Labels[c]];
                    sum -= examples[i].Labels!.Contains(m.Labels[c]) ? posWeight[c] * Math.Log(prob) : Math.Log(1 - prob);
                }
            return sum / (examples.Length * 3);
        }
        Assert.Equal(Expected([1, 1, 1]), Loss(m, examples), 1e-5);
        m.ClassWeights = [3.0, 1.0, 0.25];
        Assert.Equal(Expected([3.0, 1.0, 0.25]), Loss(m, examples), 1e-5);
    }

    [Fact]
    public void ATransformersMultiLabelFolderPredictsASigmoidPerLabelAtOneHalf()
    {
        // what transformers writes: problem_type and the labels, nothing of BertSharp's
        string dir = TinyTaskFolders.Make("classify", seed: 22, multiLabel: true);
        var configPath = Path.Combine(dir, "config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        Assert.Equal("multi_label_classification", config["problem_type"]!.GetValue<string>());
        foreach (var key in config.Select(kv => kv.Key).Where(k => k.StartsWith("bertsharp_")).ToList()) config.Remove(key);
        File.WriteAllText(configPath, config.ToJsonString());

        using var m = FineTunedModel.Load<ClassificationModel>(dir);
        Assert.True(m.MultiLabel);
        Assert.Equal(0.5, m.Threshold);
        Assert.Equal("micro_f1", m.SelectionMetric);
        string[] texts = ["the dog is red", "one", "what of the day"];
        foreach (var text in texts)
        {
            var prediction = m.Predict(text);
            var enc = m.Tokenizer.Encode(text, null, m.MaxSeqLength);
            var logits = OnnxVerifier.BertSharpOutputs(m, new OnnxVerifier.PaddedBatch(enc.InputIds.Select(i => (long)i).ToArray(),
                enc.InputIds.Select(_ => 1L).ToArray(), enc.TokenTypeIds.Select(t => (long)t).ToArray(), 1, enc.InputIds.Length))["logits"];
            var sigmoid = logits.Select(x => 1 / (1 + Math.Exp(-x))).ToArray();
            for (int c = 0; c < 3; c++) Assert.Equal(sigmoid[c], prediction.Probabilities[m.Labels[c]], 1e-5);
            Assert.Equal(Enumerable.Range(0, 3).Where(c => sigmoid[c] >= 0.5).OrderByDescending(c => sigmoid[c]).Select(c => m.Labels[c]), prediction.Labels);
            Assert.True(prediction.MultiLabel);
        }
        Assert.NotEqual(1.0, m.Predict("one").Probabilities.Values.Sum(), 3);
    }
}

/// <summary>Fine-tuning with --multi-label and --class-weights on tiny data, through the library and the `bert` command.</summary>
[Collection(SerialCollection.Name)]
public class MultiLabelFineTuneTests
{
    static readonly string[] Filler = "the of and to in is it you".Split(' ');

    /// <summary>Three filler words, "dog" (label animal) on every other example and "red" (label color) on every other
    /// pair: each of the four label sets, none included, as often.</summary>
    static void WriteTwoLabels(string dir)
    {
        var r = new Random(2);
        foreach (var (name, n) in new[] { ("train.tsv", 48), ("dev.tsv", 16) })
        {
            var lines = new List<string> { "text\tlabels" };
            for (int i = 0; i < n; i++)
            {
                bool animal = i % 2 == 0, color = i / 2 % 2 == 0;
                var words = Enumerable.Range(0, 3).Select(_ => Filler[r.Next(Filler.Length)]).ToList();
                if (animal) words.Insert(r.Next(words.Count + 1), "dog");
                if (color) words.Insert(r.Next(words.Count + 1), "red");
                lines.Add($"{string.Join(' ', words)}\t{string.Join(',', new[] { animal ? "animal" : null, color ? "color" : null }.OfType<string>())}");
            }
            File.WriteAllLines(Path.Combine(dir, name), lines);
        }
    }

    static JsonElement Json(string s) => JsonDocument.Parse(s).RootElement;

    [Fact]
    public void AMultiLabelRunCanPickItsBestModelByAnyOfItsMetrics()
    {
        var dir = TestPaths.TempDir("ft-multilabel-metric");
        WriteTwoLabels(dir);
        var e = Assert.Throws<BertSharpException>(() => FineTuneRun.Run(new FineTuneOptions
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"),
            Output = Path.Combine(dir, "run"), Data = new DataFileOptions { MultiLabel = true }, MaxSteps = 1, MetricForBestModel = "bleu",
        }));
        Assert.Equal("metricForBestModel 'bleu': the evaluation reports loss, micro_f1, macro_f1, subset_accuracy", e.Message);
    }

    [Fact]
    public void BothLabelsAreLearnedAndTheThresholdChosenOnDevTravelsWithTheModel()
    {
        var dir = TestPaths.TempDir("ft-multilabel");
        WriteTwoLabels(dir);
        string run = Path.Combine(dir, "run"), dev = Path.Combine(dir, "dev.tsv");
        var result = FineTuneRun.Run(new FineTuneOptions
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = Path.Combine(dir, "train.tsv"), Dev = dev, Output = run,
            Data = new DataFileOptions { MultiLabel = true }, Epochs = 30, BatchSize = 8, LearningRate = 3e-3, Seed = 1,
        });
        var metrics = result.Final[0].Score.Metrics;
        Assert.Equal(1.0, metrics["micro_f1"]);
        Assert.Equal(1.0, metrics["subset_accuracy"]);
        var config = Json(File.ReadAllText(Path.Combine(run, "config.json")));
        Assert.Equal("multi_label_classification", config.GetProperty("problem_type").GetString());
        Assert.Equal(metrics["threshold"], config.GetProperty("bertsharp_threshold").GetDouble());
        Assert.True(Json(File.ReadAllText(Path.Combine(run, "args.json"))).GetProperty("--multi-label").GetBoolean());

        using (var model = FineTunedModel.Load<ClassificationModel>(run))
        {
            // every dev example, each of the four label sets among them, gets exactly its own labels
            var gold = File.ReadLines(dev).Skip(1).Select(l => l.Split('\t')).ToList();
            var predicted = model.Predict(gold.Select(g => (g[0], (string?)null)).ToList());
            Assert.Equal(4, gold.Select(g => g[1]).Distinct().Count());
            for (int i = 0; i < gold.Count; i++) Assert.Equal(gold[i][1], string.Join(',', predicted[i].Labels.Order()));
            // the threshold comes back with the weights of the saved model
            model.Threshold = 0.9;
            model.LoadSaved(run);
            Assert.Equal(metrics["threshold"], model.Threshold);
        }

        var ev = Run("evaluate", run, "--data", dev, "--json");
        Assert.True(ev.Code == 0, ev.Err);
        Assert.Equal(1.0, Json(ev.Out).GetProperty("metrics").GetProperty("micro_f1").GetDouble());
        Assert.Contains("subset accuracy", ev.Err);
        string both = File.ReadLines(dev).Skip(1).First(l => l.EndsWith("\tanimal,color")).Split('\t')[0];
        var pr = Run("predict", run, both);
        Assert.True(pr.Code == 0, pr.Err);
        var line = Json(pr.Out);
        Assert.Equal(["animal", "color"], line.GetProperty("labels").EnumerateObject().Select(p => p.Name).Order());
        Assert.All(line.GetProperty("labels").EnumerateObject(), p => Assert.True(p.Value.GetDouble() >= metrics["threshold"]));
        Assert.Equal(metrics["threshold"], line.GetProperty("threshold").GetDouble());
        Assert.Equal(2, line.GetProperty("probabilities").EnumerateObject().Count());
        var row = Json(File.ReadLines(Path.Combine(run, "predictions_dev.jsonl")).First());
        Assert.Equal(row.GetProperty("labels").EnumerateArray().Select(l => l.GetString()).Order(), row.GetProperty("prediction").EnumerateArray().Select(l => l.GetString()).Order());
    }

    /// <summary>400 examples of one text, 40 of them "min": the model can learn only a constant, and the cross-entropy
    /// is least at p(min) = w·n_min / (w·n_min + n_maj).</summary>
    static string Imbalanced(string dir, bool multiLabel)
    {
        var lines = new List<string> { "text\tlabel" };
        for (int i = 0; i < 400; i++) lines.Add($"the cat sat\t{(multiLabel ? (i % 10 == 0 ? "rare," : "") + (i % 2 == 0 ? "half" : "") : i % 10 == 0 ? "min" : "maj")}");
        string train = Path.Combine(dir, multiLabel ? "multi.tsv" : "single.tsv");
        File.WriteAllLines(train, lines);
        return train;
    }

    static ClassificationPrediction TrainAndPredict(string dir, string name, bool multiLabel, string? classWeights)
    {
        string train = Imbalanced(dir, multiLabel), run = Path.Combine(dir, name);
        // one epoch: its one evaluation keeps the last model, whatever the dev metric prefers
        FineTuneRun.Run(new FineTuneOptions
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = train, Dev = train, MaxEvalExamples = 10, Output = run,
            Data = new DataFileOptions { MultiLabel = multiLabel }, ClassWeights = classWeights, Epochs = 1, BatchSize = 16, LearningRate = 3e-3, Seed = 1,
        });
        using var model = FineTunedModel.Load<ClassificationModel>(run);
        return model.Predict("the cat sat");
    }

    [Fact]
    public void HeavyWeightsOnAMinorityClassMoveTheTrainedModelToTheWeightedOptimum()
    {
        var dir = TestPaths.TempDir("ft-weights");
        var plain = TrainAndPredict(dir, "plain", multiLabel: false, classWeights: null);
        Assert.Equal("maj", plain.Label);
        Assert.Equal(40.0 / 400, plain.Probabilities["min"], 0.03);
        var weights = Path.Combine(dir, "weights.tsv");
        File.WriteAllText(weights, "min\t20\n");
        var weighted = TrainAndPredict(dir, "weighted", multiLabel: false, classWeights: weights);
        Assert.Equal("min", weighted.Label);
        Assert.Equal(20.0 * 40 / (20 * 40 + 360), weighted.Probabilities["min"], 0.03);
        var args = Json(File.ReadAllText(Path.Combine(dir, "weighted", "args.json")));
        Assert.Equal("""{"maj":1,"min":20}""", args.GetProperty("--class-weights").GetRawText().Replace(" ", "").Replace("\n", ""));

        // multi-label: "rare" on 10% of the examples; auto's pos_weight 360 / 40 = 9 balances it: σ = 9·40 / (9·40 + 360) = ½.
        // One epoch of a multi-label head lands less close to its optimum (dropout moves each label's output on its own).
        Assert.Equal(0.1, TrainAndPredict(dir, "multi-plain", multiLabel: true, classWeights: null).Probabilities["rare"], 0.04);
        Assert.Equal(0.5, TrainAndPredict(dir, "multi-auto", multiLabel: true, classWeights: "auto").Probabilities["rare"], 0.1);
    }

    [Fact]
    public void AResumedRunUsesTheWeightsItRecordedEvenWhenTheFileChanged()
    {
        var dir = TestPaths.TempDir("ft-weights-resume");
        CliFineTuneTests.WriteClassification(dir);
        var weights = Path.Combine(dir, "weights.tsv");
        File.WriteAllText(weights, "maybe\t5\nno\t0.5\n");
        FineTuneOptions Options(string output) => new()
        {
            Task = "classify", Output = output, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Model = TestPaths.TinyBert,
            ClassWeights = weights, BatchSize = 4, MaxSeqLength = 16, LearningRate = 1e-3, Epochs = 2, EvalEvery = 3, Seed = 9,
        };
        var straight = FineTuneRun.Run(Options(Path.Combine(dir, "straight")));
        var expected = Pretraining.ResumeTests.TrainLosses(straight.RunFolder);
        string stopped = Path.Combine(dir, "stopped");
        using var cts = new CancellationTokenSource();
        Assert.False(FineTuneRun.Run(Options(stopped), new TrainingEvents { Step = s => { if (s.Step == 5) cts.Cancel(); } }, cts.Token).Completed);
        File.WriteAllText(weights, "maybe\t1\n");
        var resumed = FineTuneRun.Run(new FineTuneOptions { Task = "classify", Output = stopped, Resume = true });
        Assert.True(resumed.Completed);
        Assert.Equal(new Dictionary<string, double> { ["maybe"] = 5, ["no"] = 0.5, ["yes"] = 1 }, resumed.Options.ClassWeightValues);
        var losses = Pretraining.ResumeTests.TrainLosses(stopped);
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step], 1e-5);
        // a fresh run reads the file as it is now: other weights, other losses
        var fresh = FineTuneRun.Run(Options(Path.Combine(dir, "fresh")));
        Assert.Equal(1.0, fresh.Options.ClassWeightValues!["maybe"]);
        Assert.NotEqual(expected[expected.Keys.Max()], Pretraining.ResumeTests.TrainLosses(fresh.RunFolder)[expected.Keys.Max()], 5);
    }

    [Fact]
    public void TheCommandPrintsTheWeightsAndNamesTheFileLineOfABadOne()
    {
        var dir = TestPaths.TempDir("ft-weights-cli");
        CliFineTuneTests.WriteClassification(dir);
        string F(string n) => Path.Combine(dir, n);
        var (code, _, err) = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"),
            "--output", F("run"), "--max-steps", "1", "--class-weights", "auto");
        Assert.True(code == 0, err);
        // 16 examples: 6 yes, 5 no, 5 maybe → 16 / (3 · count)
        Assert.Contains("class weights (of each class in the cross-entropy): maybe 1.0667, no 1.0667, yes 0.8889", err);
        File.WriteAllText(F("w.tsv"), "yes\t2\nperhaps\t3\n");
        (code, _, err) = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"),
            "--output", F("run2"), "--max-steps", "1", "--class-weights", F("w.tsv"));
        Assert.Equal(1, code);
        Assert.Equal($"error: {F("w.tsv")}:2: unknown label 'perhaps' (the training labels: maybe, no, yes)", err.Trim().Split('\n')[^1]);
        var help = Run("finetune", "classify", "--help").Out;
        Assert.Contains("--multi-label", help);
        Assert.Contains("--class-weights", help);
        Assert.Contains("Multi-label (--multi-label): the label column holds an example's labels separated by commas", help);
    }
}
