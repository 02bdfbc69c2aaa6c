using System.Text.Json;
using BertSharp.Cli;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Cli;

public class CliTests
{
    static readonly JsonElement Ref = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.TinyBert, "reference_outputs.json"))).RootElement;

    [Fact]
    public void FillMaskPrintsTheFixtureTop5ForEachMask()
    {
        var inputs = Ref.GetProperty("inputs");
        var mlm = Ref.GetProperty("mlm");
        var texts = inputs.GetProperty("texts");
        int checkedMasks = 0;
        for (int row = 0; row < 2; row++)
        {
            var t = texts[row];
            string a = t.ValueKind == JsonValueKind.Array ? t[0].GetString()! : t.GetProperty("text_a").GetString()!;
            string? b = t.ValueKind == JsonValueKind.Array ? (t.GetArrayLength() > 1 ? t[1].GetString() : null) : (t.TryGetProperty("text_b", out var tb) && tb.ValueKind == JsonValueKind.String ? tb.GetString() : null);
            var args = new List<string> { "fill-mask", TestPaths.TinyBert, a, "--json" };
            if (b != null) { args.Add("--pair"); args.Add(b); }
            var (code, stdout, err) = Run(args.ToArray());
            Assert.True(code == 0, err);
            var doc = JsonDocument.Parse(stdout).RootElement;
            foreach (var m in doc.GetProperty("masks").EnumerateArray())
            {
                int pos = m.GetProperty("position").GetInt32();
                int refIndex = Enumerable.Range(0, mlm.GetProperty("positions").GetArrayLength())
                    .First(i => mlm.GetProperty("positions")[i][0].GetInt32() == row && mlm.GetProperty("positions")[i][1].GetInt32() == pos);
                var expected = mlm.GetProperty("top5_ids")[refIndex].EnumerateArray().Select(x => x.GetInt32());
                Assert.Equal(expected, m.GetProperty("predictions").EnumerateArray().Select(p => p.GetProperty("id").GetInt32()));
                checkedMasks++;
            }
        }
        Assert.Equal(2, checkedMasks);
    }

    [Fact]
    public void TokenizeJsonMatchesTheReferenceInputs()
    {
        var inputs = Ref.GetProperty("inputs");
        var t = inputs.GetProperty("texts")[1];
        string a = t.ValueKind == JsonValueKind.Array ? t[0].GetString()! : t.GetProperty("text_a").GetString()!;
        string b = t.ValueKind == JsonValueKind.Array ? t[1].GetString()! : t.GetProperty("text_b").GetString()!;
        var (code, stdout, err) = Run("tokenize", TestPaths.TinyBert, a, "--pair", b, "--json");
        Assert.True(code == 0, err);
        var doc = JsonDocument.Parse(stdout).RootElement;
        var ids = inputs.GetProperty("input_ids")[1].EnumerateArray().Select(x => x.GetInt32()).Where(x => x != 0).ToArray();
        Assert.Equal(ids, doc.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(inputs.GetProperty("token_type_ids")[1].EnumerateArray().Take(ids.Length).Select(x => x.GetInt32()),
            doc.GetProperty("token_type_ids").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Fact]
    public void TokenizeReadsJsonLinesInOrder()
    {
        var dir = TestPaths.TempDir("tok");
        var file = Path.Combine(dir, "in.jsonl");
        File.WriteAllLines(file, new[] { "{\"text\": \"hello world\"}", "", "{\"text\": \"a b\", \"pair\": \"c\"}" });
        var (code, stdout, err) = Run("tokenize", TestPaths.TinyBert, "--file", file);
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(new[] { "[CLS]", "hello", "world", "[SEP]" }, JsonDocument.Parse(lines[0]).RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(new[] { 0, 0, 0, 0, 1, 1 }, JsonDocument.Parse(lines[1]).RootElement.GetProperty("token_type_ids").EnumerateArray().Select(x => x.GetInt32()));

        File.WriteAllLines(file, new[] { "{\"text\": \"ok\"}", "{\"txt\": 1}" });
        var bad = Run("tokenize", TestPaths.TinyBert, "--file", file);
        Assert.Equal(1, bad.Code);
        Assert.Contains($"{file}:2: missing string field \"text\"", bad.Err);
    }

    [Fact]
    public void InfoCountsParametersByPart()
    {
        var (code, stdout, err) = Run("info", TestPaths.TinyBert, "--json");
        Assert.True(code == 0, err);
        var doc = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("BertForPreTraining", doc.GetProperty("architecture").GetString());
        // 1000·32 + 128·32 + 2·32 + 2·32 = 36,224 in the embeddings
        Assert.Equal(36224, doc.GetProperty("parameters").GetProperty("embeddings").GetInt64());
        Assert.Equal(56554, doc.GetProperty("total_parameters").GetInt64());
    }

    static string BrokenCopy(Action<string> breakIt)
    {
        var dir = TestPaths.CopyOf(TestPaths.TinyBert);
        breakIt(dir);
        return dir;
    }

    public static IEnumerable<object[]> BadFolders()
    {
        yield return new object[] { "missing", "model folder not found" };
        yield return new object[] { "type", "field 'hidden_size' must be an integer, got the string \"32\"" };
        yield return new object[] { "heads", "hidden_size 32 is not divisible by num_attention_heads 5" };
        yield return new object[] { "truncated", "model.safetensors: " };
        yield return new object[] { "header", "header claims" };
        yield return new object[] { "vocab", "vocab.txt: has 900 tokens but config.json says vocab_size 1000" };
    }

    [Theory]
    [MemberData(nameof(BadFolders))]
    public void BadModelFoldersGiveOneLineErrors(string kind, string expected)
    {
        string dir = kind switch
        {
            "missing" => Path.Combine(TestPaths.TempDir("none"), "nope"),
            "type" => BrokenCopy(d => Edit(Path.Combine(d, "config.json"), "\"hidden_size\": 32", "\"hidden_size\": \"32\"")),
            "heads" => BrokenCopy(d => Edit(Path.Combine(d, "config.json"), "\"num_attention_heads\": 4", "\"num_attention_heads\": 5")),
            "truncated" => BrokenCopy(d => { var p = Path.Combine(d, "model.safetensors"); var b = File.ReadAllBytes(p); File.WriteAllBytes(p, b[..100_000]); }),
            "header" => BrokenCopy(d =>
            {
                var p = Path.Combine(d, "model.safetensors");
                var b = File.ReadAllBytes(p);
                BitConverter.GetBytes(BitConverter.ToUInt64(b, 0) + 1_000_000).CopyTo(b, 0);
                File.WriteAllBytes(p, b);
            }),
            "vocab" => BrokenCopy(d => { var p = Path.Combine(d, "vocab.txt"); File.WriteAllLines(p, File.ReadLines(p).Take(900).ToList()); }),
            _ => throw new ArgumentException(kind),
        };
        var (code, stdout, err) = Run("info", dir);
        Assert.Equal(1, code);
        Assert.Contains(expected, err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // one line, no stack trace
        Assert.Contains(kind == "missing" ? dir : Path.GetFileName(dir), err);
    }

    static void Edit(string path, string from, string to)
    {
        var s = File.ReadAllText(path);
        Assert.Contains(from, s);
        File.WriteAllText(path, s.Replace(from, to));
    }

    [Fact]
    public void HelpListsOneLinePerCommandAndEachCommandsHelpHasItsDetails()
    {
        static List<string> Commands(string help) =>
            help[(help.IndexOf("Commands:", StringComparison.Ordinal) + "Commands:".Length)..].Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var (code, stdout, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Equal(["info", "tokenize", "fill-mask", "vocab", "pretrain", "finetune", "evaluate", "predict", "embed", "search", "serve", "bench", "export"],
            Commands(stdout).Select(l => l.Trim().Split(' ')[0]));
        Assert.DoesNotContain("Text files are UTF-8", stdout);
        var finetune = Run("finetune", "--help").Out;
        Assert.Equal(["classify", "similarity", "tag", "qa", "embed"], Commands(finetune).Select(l => l.Trim().Split(' ')[0]));
        var classify = Run("finetune", "classify", "--help").Out;
        Assert.Contains("Details:", classify);
        Assert.Contains("Default columns:", classify);
    }

    [Fact]
    public void LibraryErrorsNameParametersAndTheCommandLineShowsItsOptions()
    {
        var e = new BertSharpException("batchSize must be at least 1, got 0; data/batchSize.tsv is not batchSize.") { Parameters = ["batchSize"] };
        Assert.Equal("--batch-size must be at least 1, got 0; data/batchSize.tsv is not --batch-size.", ParameterFlags.Message(e));
        var dir = TestPaths.TempDir("param-errors");
        var (code, _, err) = Run("fill-mask", TestPaths.TinyBert, "a [MASK] b", "--top-k", "0");
        Assert.Equal(1, code);
        Assert.Equal("error: --top-k must be at least 1, got 0", err.Trim());
        (code, _, err) = Run("finetune", "classify", "--output", Path.Combine(dir, "run"));
        Assert.Equal(1, code);
        Assert.Equal("error: --train is required (the training data file)", err.Trim());
    }

    [Fact]
    public void VerboseShowsTheStackTrace()
    {
        var (code, _, err) = Run("info", "/nonexistent/folder", "--verbose");
        Assert.Equal(1, code);
        Assert.Contains("   at ", err);
    }
}

/// <summary>`bert bench` runs models and sets the compute dtype for their duration: apart from tests that set it.</summary>
[Collection(SerialCollection.Name)]
public class BenchCommandTests
{
    [Fact]
    public void BenchTrainTakesItsShapeFromThePresetUnlessGiven()
    {
        Assert.Equal(new BertSharp.Benchmarking.BenchShape(512, 64, 20256, 10), BertSharp.Benchmarking.BenchShape.For("seed"));
        // mini: BERT's vocabulary, 128 tokens and 20 predictions from the non-seed defaults; the batch size as given.
        var (code, stdout, err) = Run("bench", "train", "--model-preset", "mini", "--batch-size", "2", "--steps", "1", "--json");
        Assert.True(code == 0, err);
        var train = JsonDocument.Parse(stdout).RootElement.EnumerateArray().Single(r => r.GetProperty("name").GetString()!.StartsWith("train"));
        Assert.Equal("train L4/H256/A4 batch 2x128", train.GetProperty("name").GetString());
        Assert.StartsWith("20 MLM predictions/sequence, vocab 30522", train.GetProperty("detail").GetString());
        Assert.True(train.GetProperty("sequences_per_second").GetDouble() > 0);
    }
}
