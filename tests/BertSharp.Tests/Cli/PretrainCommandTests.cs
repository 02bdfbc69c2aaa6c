using System.Text.Json;
using BertSharp.Tests.Pretraining;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Cli;

public class PretrainCommandTests
{
    [Fact]
    public void PretrainWritesTheRunFolderAndTheModelWorksWithTheOtherCommands()
    {
        var dir = TestPaths.TempDir("pretrain-cli");
        var corpus = ResumeTests.WriteCorpus(dir);
        var run = Path.Combine(dir, "run");
        var (code, _, err) = Run("pretrain", "--corpus", corpus, "--output", run, "--vocab-size", "120", "--max-seq-length", "32",
            "--batch-size", "8", "--max-steps", "6", "--eval-every", "3", "--max-eval-examples", "16", "--seed", "3");
        Assert.True(code == 0, err);
        foreach (var f in new[] { "config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json", "args.json", "metrics.jsonl", "metrics.csv",
                     "plots/loss.png", "plots/mlm_loss.png", "plots/nsp_loss.png", "checkpoints/last/optimizer.bin", "checkpoints/last/trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(run, f)), $"{f} missing");
        Assert.Single(Directory.GetFiles(run, "events.out.tfevents.*"));
        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "args.json"))).RootElement;
        Assert.Equal(8, args.GetProperty("--batch-size").GetInt32());
        Assert.Equal(3, args.GetProperty("--seed").GetInt64());
        // --precision defaults to auto, recorded as what it chose (a resume continues in the same precision)
        Assert.Equal(global::BertSharp.Modeling.ComputeOptions.CpuHasNativeBf16 ? "bf16" : "fp32", args.GetProperty("--precision").GetString());
        var evals = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("split").GetString() == "eval").ToList();
        Assert.Equal(new long[] { 3, 6 }, evals.Select(r => r.GetProperty("step").GetInt64()));
        foreach (var k in new[] { "val_loss", "val_mlm_loss", "val_mlm_accuracy", "val_perplexity", "val_nsp_accuracy" })
            Assert.True(evals[0].TryGetProperty(k, out _), k);
        Assert.Contains("always predicting the most frequent token", err);

        // The best model is an HF folder the other commands read.
        Assert.Equal(0, Run("info", run).Code);
        var tok = Run("tokenize", run, "the first one", "--json");
        Assert.True(tok.Code == 0, tok.Err);
        var fill = Run("fill-mask", run, "the [MASK] one", "--json", "--top-k", "3");
        Assert.True(fill.Code == 0, fill.Err);
        Assert.Equal(3, JsonDocument.Parse(fill.Out).RootElement.GetProperty("masks")[0].GetProperty("predictions").GetArrayLength());

        // A second start into the same folder is refused rather than overwriting the run.
        var again = Run("pretrain", "--corpus", corpus, "--output", run, "--max-steps", "2");
        Assert.Equal(1, again.Code);
        Assert.Contains("already holds a run", again.Err);
        // --resume of a finished run keeps its options and finishes at once.
        var resumed = Run("pretrain", "--resume", "--output", run);
        Assert.True(resumed.Code == 0, resumed.Err);
    }

    [Fact]
    public void VocabBuildWritesADeterministicVocabulary()
    {
        var dir = TestPaths.TempDir("vocab-cli");
        var corpus = ResumeTests.WriteCorpus(dir, docs: 30);
        var a = Path.Combine(dir, "a.txt");
        var b = Path.Combine(dir, "b.txt");
        var r1 = Run("vocab", "build", "--corpus", corpus, "--vocab-size", "100", "--output", a);
        Assert.True(r1.Code == 0, r1.Err);
        Assert.Contains("[UNK] rate on the validation split", r1.Out);
        Assert.Equal(0, Run("vocab", "build", "--corpus", corpus, "--vocab-size", "100", "--output", b).Code);
        var lines = File.ReadAllLines(a);
        Assert.Equal(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }, lines.Take(5));
        Assert.True(lines.Length <= 100);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        var tokenizer = BertSharp.Tokenization.BertTokenizer.FromVocabFile(a);
        Assert.DoesNotContain(tokenizer.UnkId, tokenizer.Encode("the first one was new"));
    }
}
