using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tests.Data;
using BertSharp.Tests.Tasks;
using TorchSharp;
using static BertSharp.Tests.Cli.CliRunner;
using static TorchSharp.torch;

namespace BertSharp.Tests.Pretraining;

/// <summary>`bert pretrain --model`: masked-LM pre-training continued from a checkpoint on the tiny fixture model (a
/// BertForPreTraining with both heads) and on a bare BertModel made from it (no MLM head, as all-MiniLM-L6-v2).</summary>
[Collection(SerialCollection.Name)]
public class ContinuedPretrainingTests
{
    static PretrainingRunOptions Options(string model, string corpus, string output, long maxSteps) => new()
    {
        Model = model, Corpus = corpus, ValidationCorpus = corpus, Output = output, MaxSeqLength = 32, BatchSize = 8,
        MaxValidationExamples = 32, MaxSteps = maxSteps, EvalEvery = 10, LearningRate = 1e-3, Seed = 5,
    };

    static Dictionary<string, Tensor> Weights(string dir) => SafeTensorsFile.Load(Path.Combine(dir, ModelFolder.SafeTensorsFileName));

    [Fact]
    public void Continuing_the_tiny_model_lowers_its_MLM_loss_keeps_its_vocabulary_and_heads_and_the_result_fine_tunes()
    {
        var dir = TestPaths.TempDir("continued");
        var corpus = ResumeTests.WriteCorpus(dir);
        var result = PretrainingRun.Run(Options(TestPaths.TinyBert, corpus, Path.Combine(dir, "run"), maxSteps: 30) with { BatchSize = 16 });   // two shards on two threads
        Assert.True(result.Completed);
        Assert.Equal("mlm", result.Options.Objective);

        // The MLM loss on the training corpus (also the validation corpus here) fell from the checkpoint's.
        double before = result.StartEvaluation!["mlm_loss"], after = result.Training.LastEvaluation["mlm_loss"];
        Assert.True(after < before - 0.5, $"validation MLM loss {before:F3} before, {after:F3} after");
        Assert.DoesNotContain("nsp_loss", result.Training.LastEvaluation.Keys);

        var run = result.RunFolder;
        Assert.Equal(File.ReadAllBytes(Path.Combine(TestPaths.TinyBert, "vocab.txt")), File.ReadAllBytes(Path.Combine(run, "vocab.txt")));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!.AsObject();
        Assert.Equal("BertForPreTraining", config["architectures"]![0]!.GetValue<string>());   // the heads it started with
        Assert.Equal(32, config["hidden_size"]!.GetValue<int>());
        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(run, "tokenizer_config.json")))!["do_lower_case"]!.GetValue<bool>());

        // The keys transformers writes for BertForPreTraining; the NSP head and the pooler (which only feeds it) are not
        // trained by the MLM objective and come through unchanged, while the MLM head was trained.
        var start = Weights(TestPaths.TinyBert);
        var end = Weights(run);
        Assert.Equal(start.Keys.Where(k => !k.EndsWith("position_ids")).Order(), end.Keys.Order());
        foreach (var key in new[] { "cls.seq_relationship.weight", "bert.pooler.dense.weight" })
            Assert.True(start[key].eq(end[key]).all().item<bool>(), $"{key} changed");
        Assert.False(start["cls.predictions.transform.dense.weight"].eq(end["cls.predictions.transform.dense.weight"]).all().item<bool>());

        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "args.json"))).RootElement;
        Assert.Equal(TestPaths.TinyBert, args.GetProperty("--model").GetString());
        Assert.Equal("mlm", args.GetProperty("--objective").GetString());
        Assert.Equal(JsonValueKind.Null, args.GetProperty("--model-preset").ValueKind);

        // The run folder is a starting model for fine-tuning.
        CliFineTuneTests.WriteClassification(dir);
        var tuned = FineTuneRun.Run(new FineTuneOptions
        {
            Task = ClassificationModel.Task, Model = run, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"),
            Output = Path.Combine(dir, "classify"), BatchSize = 4, MaxSeqLength = 16, MaxSteps = 2, Seed = 5,
        });
        Assert.True(tuned.Completed);
    }

    /// <summary>The loss of the first step is the checkpoint's own on the first batch, computed here with the model loaded by
    /// <see cref="ModelFolder.Load"/> (dropout off, so that the training step's forward is the same function); a model
    /// initialized afresh gives another.</summary>
    [Fact]
    public void The_first_step_trains_the_checkpoints_weights()
    {
        var dir = TestPaths.TempDir("continued-first");
        var corpus = ResumeTests.WriteCorpus(dir);
        var model = TestPaths.CopyOf(TestPaths.TinyBert);
        var configPath = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["hidden_dropout_prob"] = 0.0;
        config["attention_probs_dropout_prob"] = 0.0;
        File.WriteAllText(configPath, config.ToJsonString());

        var o = Options(model, corpus, Path.Combine(dir, "run"), maxSteps: 1) with { Precision = "fp32" };   // the loss below is computed in fp32
        var result = PretrainingRun.Run(o);
        double logged = ResumeTests.TrainLosses(result.RunFolder)[1];

        var prepared = PretrainingRun.Prepare(o, Path.Combine(dir, "unused"), seed: 5, resume: false);
        prepared.Task.Model.Dispose();
        using var batch = prepared.Task.TrainBatches(0, 0).First();
        double LossOf(BertForPreTraining m)
        {
            m.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            using var output = m.Forward(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], batch["masked_positions"]);
            return nn.functional.cross_entropy(output.MlmLogits, batch["masked_labels"]).item<float>();
        }
        var (checkpoint, _) = ModelFolder.Load(model, "BertForPreTraining");
        using (checkpoint) Assert.Equal(LossOf((BertForPreTraining)checkpoint), logged, 4);
        TorchRuntime.Seed(5);
        using var fresh = (BertForPreTraining)ModelFolder.NewModel("BertForPreTraining", ModelFolder.ReadConfig(model));
        Assert.True(Math.Abs(LossOf(fresh) - logged) > 0.01, $"a fresh model's loss {LossOf(fresh):F4}, the first step's {logged:F4}");
    }

    /// <summary>The tiny model as HF's bare BertModel (the keys sentence-transformers saves, no heads).</summary>
    static string BareModel(string dir)
    {
        var bare = Path.Combine(dir, "bare");
        var (model, _) = ModelFolder.Load(TestPaths.TinyBert, "BertModel");
        using (model) ModelFolder.Save(model, bare);
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json" }) File.Copy(Path.Combine(TestPaths.TinyBert, f), Path.Combine(bare, f));
        return bare;
    }

    [Fact]
    public void A_model_without_an_MLM_head_gets_a_new_tied_one_and_the_cli_resumes_and_refuses_new_model_options()
    {
        var dir = TestPaths.TempDir("continued-bare");
        var corpus = ResumeTests.WriteCorpus(dir);
        var bare = BareModel(dir);
        var run = Path.Combine(dir, "run");
        var (code, _, err) = Run("pretrain", "--model", bare, "--corpus", corpus, "--output", run, "--max-seq-length", "32", "--batch-size", "8",
            "--max-steps", "4", "--eval-every", "2", "--max-eval-examples", "16", "--seed", "3");
        Assert.True(code == 0, err);
        Assert.Contains("has no masked-LM head", err);
        Assert.Contains("decoder tied to the word embeddings", err);
        Assert.Contains("objective mlm", err);
        Assert.Contains("starting model: validation MLM loss", err);
        Assert.DoesNotContain("NSP accuracy", err);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!.AsObject();
        Assert.Equal("BertForMaskedLM", config["architectures"]![0]!.GetValue<string>());
        var keys = Weights(run).Keys.ToHashSet();
        Assert.Contains("bert.embeddings.word_embeddings.weight", keys);
        Assert.Contains("cls.predictions.transform.dense.weight", keys);
        Assert.Contains("cls.predictions.bias", keys);
        Assert.Contains("bert.pooler.dense.weight", keys);   // kept for fine-tuning; transformers' BertForMaskedLM ignores it
        Assert.DoesNotContain("cls.predictions.decoder.weight", keys);   // tied: the word embeddings
        Assert.DoesNotContain(keys, k => k.StartsWith("cls.seq_relationship."));
        Assert.Equal(File.ReadAllBytes(Path.Combine(bare, "vocab.txt")), File.ReadAllBytes(Path.Combine(run, "vocab.txt")));
        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "args.json"))).RootElement;
        Assert.Equal(5e-5, args.GetProperty("--learning-rate").GetDouble());   // continued pre-training's default

        // It loads where a pre-trained model goes, without warnings about the heads it has.
        var fill = Run("fill-mask", run, "the [MASK] one", "--json");
        Assert.True(fill.Code == 0, fill.Err);
        Assert.DoesNotContain("warning", fill.Err);
        var info = Run("info", run);
        Assert.True(info.Code == 0, info.Err);
        Assert.DoesNotContain("warning", info.Err);

        // --resume keeps the options (the model included) and finds the run finished.
        var resumed = Run("pretrain", "--resume", "--output", run);
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("nothing left to train", resumed.Err);

        var clash = Run("pretrain", "--model", bare, "--corpus", corpus, "--output", Path.Combine(dir, "clash"), "--vocab-size", "100");
        Assert.Equal(1, clash.Code);
        Assert.Contains($"--vocab-size is for pre-training from scratch; --model {bare} brings its own size, vocabulary and lower-casing", clash.Err);
        var objective = Run("pretrain", "--model", bare, "--corpus", corpus, "--output", Path.Combine(dir, "objective"), "--objective", "nsp");
        Assert.Equal(1, objective.Code);
        Assert.Contains("--objective 'nsp': choose mlm or mlm+nsp", objective.Err);
    }

    [Fact]
    public void The_mlm_plus_nsp_objective_trains_both_heads()
    {
        var dir = TestPaths.TempDir("continued-nsp");
        var corpus = ResumeTests.WriteCorpus(dir);
        var result = PretrainingRun.Run(Options(TestPaths.TinyBert, corpus, Path.Combine(dir, "run"), maxSteps: 2) with { Objective = "mlm+nsp", EvalEvery = 2 });
        Assert.True(result.Completed);
        Assert.Contains("nsp_accuracy", result.Training.LastEvaluation.Keys);
        var start = Weights(TestPaths.TinyBert);
        var end = Weights(result.RunFolder);
        Assert.False(start["cls.seq_relationship.weight"].eq(end["cls.seq_relationship.weight"]).all().item<bool>());
    }

    [Fact]
    public void Masked_lm_examples_pack_whole_sentences_of_one_document_and_cut_only_longer_ones()
    {
        int[] S(int from, int n) => Enumerable.Range(from, n).ToArray();
        var docs = new List<IReadOnlyList<int[]>> { new[] { S(10, 3), S(20, 3), S(30, 4), S(40, 9) }, new[] { S(60, 2) } };
        var examples = PretrainingExamples.CreateMlmExamples(docs, new PretrainingDataOptions { MaxSeqLength = 9 }, clsId: 2, sepId: 3);
        // 7 tokens fit between [CLS] and [SEP]: 3+3 | 4 | the 9-token sentence cut 7+2 | the next document apart.
        Assert.Equal(
            [[2, 10, 11, 12, 20, 21, 22, 3], [2, 30, 31, 32, 33, 3], [2, .. S(40, 7), 3], [2, 47, 48, 3], [2, 60, 61, 3]],
            examples.Select(e => e.InputIds));
        Assert.All(examples, e => Assert.True(!e.IsRandomNext && e.TokenTypeIds.All(t => t == 0)));
    }

    [RealDataFact("models/all-MiniLM-L6-v2")]
    public void All_MiniLM_L6_v2_continues_with_its_vocabulary_and_a_new_MLM_head()
    {
        var dir = TestPaths.TempDir("continued-minilm");
        var corpus = ResumeTests.WriteCorpus(dir);
        var minilm = Path.Combine(RealData.Dir!, "models", "all-MiniLM-L6-v2");
        var result = PretrainingRun.Run(Options(minilm, corpus, Path.Combine(dir, "run"), maxSteps: 2) with { BatchSize = 4, MaxValidationExamples = 8, EvalEvery = 2, LearningRate = null });
        Assert.True(result.Completed);
        Assert.Equal(File.ReadAllBytes(Path.Combine(minilm, "vocab.txt")), File.ReadAllBytes(Path.Combine(result.RunFolder, "vocab.txt")));
        var config = ModelFolder.ReadConfig(result.RunFolder);
        Assert.Equal(["BertForMaskedLM"], config.Architectures);
        Assert.Equal((6, 384, 30522), (config.NumHiddenLayers, config.HiddenSize, config.VocabSize));
        // The encoder started from the checkpoint: two small steps leave its embeddings close to the published ones.
        var start = SafeTensorsFile.Load(Path.Combine(minilm, ModelFolder.SafeTensorsFileName))["embeddings.word_embeddings.weight"];
        var end = Weights(result.RunFolder)["bert.embeddings.word_embeddings.weight"];
        Assert.True((end - start).abs().max().item<float>() < 1e-3);
    }
}
