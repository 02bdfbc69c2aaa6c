using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class ModelFolderTests
{
    [Fact]
    public void SaveThenLoadIsBitIdentical()
    {
        var (model, _) = ModelFolder.Load(TestPaths.TinyBert);
        using var _m = model;
        var dir = TestPaths.TempDir("save");
        ModelFolder.Save(model, dir);
        var (again, report) = ModelFolder.Load(dir, weightsPath: Path.Combine(dir, ModelFolder.SafeTensorsFileName), configure: null);
        using var _a = again;
        Assert.Empty(report.NewlyInitialized);
        Assert.Empty(report.Unexpected);
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in again.named_parameters())
            CheckpointTestUtil.AssertBitEqual(original[name], p, name);

        // The file: tied decoder copies and the position_ids buffer left out (transformers >= 4.31 writes the same),
        // sorted names, 8-byte-aligned header, __metadata__ {"format":"pt"}.
        var bytes = File.ReadAllBytes(Path.Combine(dir, ModelFolder.SafeTensorsFileName));
        long n = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, n % 8);
        var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n)).RootElement;
        Assert.Equal("pt", header.GetProperty("__metadata__").GetProperty("format").GetString());
        var names = header.EnumerateObject().Select(p => p.Name).Where(k => k != "__metadata__").ToList();
        Assert.Equal(46, names.Count);
        Assert.DoesNotContain("cls.predictions.decoder.weight", names);
        Assert.DoesNotContain("bert.embeddings.position_ids", names);
        Assert.Equal(names.OrderBy(x => x, StringComparer.Ordinal), names);

        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json"))).RootElement;
        Assert.Equal("bert", config.GetProperty("model_type").GetString());
        Assert.Equal("BertForPreTraining", config.GetProperty("architectures")[0].GetString());
        Assert.Equal(32, config.GetProperty("hidden_size").GetInt32());
    }

    [Fact]
    public void OldGammaBetaNamesAndBareBertModelKeysLoad()
    {
        var weights = SafeTensorsFile.Load(Path.Combine(TestPaths.TinyBert, "model.safetensors"));
        try
        {
            // A TF-era, headless checkpoint: no "bert." prefix, LayerNorm gamma/beta.
            var old = new Dictionary<string, Tensor>();
            foreach (var (k, v) in weights)
            {
                if (!k.StartsWith("bert.")) continue;
                var key = k["bert.".Length..];
                if (key.EndsWith("LayerNorm.weight")) key = key[..^"weight".Length] + "gamma";
                if (key.EndsWith("LayerNorm.bias")) key = key[..^"bias".Length] + "beta";
                old[key] = v;
            }
            var config = BertConfig.Load(Path.Combine(TestPaths.TinyBert, "config.json"));
            using var model = new BertForPreTraining(config);
            model.InitWeights();
            var report = ModelFolder.LoadStateDict(model, old, "old.bin");
            Assert.Empty(report.Unexpected);
            Assert.All(report.NewlyInitialized, k => Assert.StartsWith("cls.", k)); // only the heads were absent
            var ln = model.named_parameters().First(p => p.name == "bert.encoder.layer.1.output.LayerNorm.bias").parameter;
            CheckpointTestUtil.AssertBitEqual(weights["bert.encoder.layer.1.output.LayerNorm.bias"], ln, "LayerNorm.beta");
        }
        finally { CheckpointTestUtil.DisposeAll(weights); }
    }

    [Fact]
    public void ShapeMismatchNamesTheTensor()
    {
        var config = BertConfig.Load(Path.Combine(TestPaths.TinyBert, "config.json"));
        config.IntermediateSize = 48;
        using var model = new BertForPreTraining(config);
        var weights = SafeTensorsFile.Load(Path.Combine(TestPaths.TinyBert, "model.safetensors"));
        try
        {
            var e = Assert.Throws<BertSharpException>(() => ModelFolder.LoadStateDict(model, weights, "x.safetensors"));
            Assert.Matches(@"tensor 'bert\.encoder\.layer\.\d\.(intermediate|output)\.dense\.(weight|bias)' has shape \[.*64.*\] but the model .* expects \[.*48.*\]", e.Message);
        }
        finally { CheckpointTestUtil.DisposeAll(weights); }
    }
}
