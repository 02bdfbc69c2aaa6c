using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Inference;

public sealed record MaskPrediction(string Token, int Id, double Probability);

/// <summary>The top-k predictions for one [MASK] token; Position indexes the encoded sequence ([CLS] = 0).</summary>
public sealed record MaskResult(int Position, IReadOnlyList<MaskPrediction> Predictions);

/// <summary>Predicts the tokens behind [MASK] with a pre-trained model's MLM head. Load once, predict many.</summary>
public sealed class FillMask : IDisposable
{
    private readonly BertForPreTraining model;
    private readonly Device device;
    public BertTokenizer Tokenizer { get; }
    public LoadReport LoadReport { get; }

    public FillMask(string modelDir, LoadOptions? options = null)
    {
        options ??= new();
        modelDir = Hub.ModelSource.Resolve(modelDir, options.Hub);
        // The MLM head alone: a next-sentence head, there or not, plays no part in filling masks.
        var (m, report) = ModelFolder.Load(modelDir, "BertForMaskedLM", compute: ComputeOptions.ForInference(options.Precision), device: options.Device);
        model = (BertForPreTraining)m;
        device = model.parameters().First().device;
        LoadReport = report with { Unexpected = report.Unexpected.Where(k => !k.StartsWith("cls.seq_relationship.")).ToList() };
        Tokenizer = BertTokenizer.FromFolder(modelDir);
    }

    public IReadOnlyList<MaskResult> Predict(string text, string? pair = null, int topK = 5)
    {
        if (topK < 1) throw new BertSharpException($"topK must be at least 1, got {topK}") { Parameters = ["topK"] };
        var enc = Tokenizer.Encode(text, pair, model.Config.MaxPositionEmbeddings);
        var maskPositions = Enumerable.Range(0, enc.InputIds.Length).Where(i => enc.InputIds[i] == Tokenizer.MaskId).ToArray();
        if (maskPositions.Length == 0)
            throw new BertSharpException($"no [MASK] token in the input; write [MASK] where a word should be predicted");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(enc.InputIds.Select(i => (long)i).ToArray(), device: device).unsqueeze(0);
        var types = tensor(enc.TokenTypeIds.Select(i => (long)i).ToArray(), device: device).unsqueeze(0);
        var positions = tensor(maskPositions.Select(i => (long)i).ToArray(), device: device);
        using var output = model.Forward(ids, types, null, positions);
        var probs = functional.softmax(output.MlmLogits.to(ScalarType.Float32), -1);
        var (values, indices) = probs.topk(Math.Min(topK, model.Config.VocabSize), dim: -1);
        var v = values.cpu().data<float>().ToArray();
        var ix = indices.cpu().data<long>().ToArray();
        int k = (int)values.shape[1];
        var results = new List<MaskResult>();
        for (int m = 0; m < maskPositions.Length; m++)
        {
            var preds = Enumerable.Range(0, k)
                .Select(j => new MaskPrediction(Tokenizer.IdToToken((int)ix[m * k + j]), (int)ix[m * k + j], v[m * k + j]))
                .ToList();
            results.Add(new MaskResult(maskPositions[m], preds));
        }
        return results;
    }

    public void Dispose() => model.Dispose();
}
