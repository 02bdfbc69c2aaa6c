using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Tasks;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Pretraining;

/// <summary>
/// Masked-LM + next-sentence-prediction training over prepared NSP examples, or masked-LM training alone (the
/// examples then single segments, the NSP head, if the model has one, left as it is). Training masks are drawn per
/// (seed, epoch, example): fresh every epoch, or the epoch-0 masks every time with StaticMask. Validation
/// masks are drawn once, so validation numbers are comparable across evaluations.
/// </summary>
public sealed class PretrainingTask : ITrainingTask
{
    private readonly BertForPreTraining model;
    private readonly Device device;
    private readonly BertTokenizer tokenizer;
    private readonly IReadOnlyList<NspExample> train;
    private readonly IReadOnlyList<MaskedExample> validation;
    private readonly PretrainingDataOptions data;
    private readonly MaskingVocab vocab;
    private readonly int batchSize, evalBatchSize;
    private readonly long seed;
    private readonly bool staticMask;
    private readonly bool nsp;

    /// <param name="nextSentencePrediction">false: the masked-LM objective alone</param>
    public PretrainingTask(BertForPreTraining model, BertTokenizer tokenizer, IReadOnlyList<NspExample> train,
        IReadOnlyList<NspExample> validation, PretrainingDataOptions data, int batchSize, long seed, bool staticMask, int evalBatchSize = 0,
        bool nextSentencePrediction = true)
    {
        if (batchSize < 1) throw new BertSharpException($"batchSize must be at least 1, got {batchSize}") { Parameters = ["batchSize"] };
        if (train.Count == 0) throw new BertSharpException("the training corpus produced no examples");
        if (nextSentencePrediction && !model.HasNextSentenceHead) throw new ArgumentException("next-sentence prediction needs a model with the NSP head", nameof(model));
        nsp = nextSentencePrediction;
        this.model = model;
        device = model.parameters().First().device;
        this.tokenizer = tokenizer;
        this.train = train;
        this.data = data;
        this.batchSize = batchSize;
        this.evalBatchSize = evalBatchSize > 0 ? evalBatchSize : batchSize;
        this.seed = seed;
        this.staticMask = staticMask;
        vocab = VocabFor(tokenizer);
        this.validation = validation.Select((e, i) => { var r = SplitMix.For(seed, 0x56414C /* "VAL" */, i); return PretrainingExamples.Mask(e, data, vocab, ref r); }).ToList();
    }

    public static MaskingVocab VocabFor(BertTokenizer t) =>
        new(t.VocabSize, t.ClsId, t.SepId, t.MaskId, t.Vocabulary.Select(s => s.StartsWith("##")).ToArray());

    public BertWithHead Model => model;
    public IReadOnlyList<int> ValidationLabels => validation.SelectMany(e => e.MaskedLabels).ToList();
    public int BatchesPerEpoch => (train.Count + batchSize - 1) / batchSize;
    // The best model is the one with the lowest validation MLM loss (perplexity), not MLM + NSP: on a small corpus the
    // NSP loss overfits while MLM keeps improving, and picking on the sum kept an earlier, weaker model (docs/PRETRAINING.md).
    public string SelectionMetric => "mlm_loss";
    public IReadOnlyCollection<string> Metrics => nsp
        ? ["loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "perplexity", "nsp_accuracy"]
        : ["loss", "mlm_loss", "mlm_accuracy", "perplexity"];
    public bool NextSentencePrediction => nsp;

    public IEnumerable<Batch> TrainBatches(int epoch, int start)
    {
        var order = Batching.Shuffled(train.Count, seed, epoch);
        int maskEpoch = staticMask ? 0 : epoch;
        for (int b = start; b < BatchesPerEpoch; b++)
        {
            var items = new List<MaskedExample>(batchSize);
            for (int i = b * batchSize; i < Math.Min(train.Count, (b + 1) * batchSize); i++)
            {
                var rng = SplitMix.For(seed, 0x4D534B /* "MSK" */, maskEpoch, order[i]);
                items.Add(PretrainingExamples.Mask(train[order[i]], data, vocab, ref rng));
            }
            yield return Collate(items, epoch, b);
        }
    }

    /// <summary>Pads to the longest example in the batch; masked positions become flat indices into B·L.</summary>
    public Batch Collate(IReadOnlyList<MaskedExample> items, int epoch, int index)
    {
        var tensors = Batching.PaddedInputs(items.Select(e => e.InputIds).ToList(), items.Select(e => e.TokenTypeIds).ToList(), tokenizer.PadId, out int L, device);
        var positions = new List<long>();
        var labels = new List<long>();
        for (int b = 0; b < items.Count; b++)
        {
            var e = items[b];
            for (int p = 0; p < e.MaskedPositions.Length; p++)
            {
                positions.Add(b * L + e.MaskedPositions[p]);
                labels.Add(e.MaskedLabels[p]);
            }
        }
        tensors["masked_positions"] = tensor(positions.ToArray(), device: device);
        tensors["masked_labels"] = tensor(labels.ToArray(), device: device);
        if (nsp) tensors["next_sentence_label"] = tensor(items.Select(e => e.IsRandomNext ? 1L : 0L).ToArray(), device: device);
        return new Batch { Sequences = items.Count, Epoch = epoch, Index = index, Tensors = tensors };
    }

    public BatchLoss Loss(Batch b)
    {
        var (total, mlm, nspLoss) = ShardedPretrainingLoss.Compute(model, b["input_ids"], b["token_type_ids"], b["attention_mask"],
            b["masked_positions"], b["masked_labels"], nsp ? b["next_sentence_label"] : null);
        var parts = new Dictionary<string, Tensor> { ["mlm_loss"] = mlm };
        if (nspLoss is not null) parts["nsp_loss"] = nspLoss;
        return new BatchLoss(total, parts);
    }

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        double mlmLossSum = 0, nspLossSum = 0;
        long mlmCount = 0, mlmCorrect = 0, nspCount = 0, nspCorrect = 0;
        for (int start = 0; start < validation.Count; start += evalBatchSize)
        {
            using var scope = NewDisposeScope();
            var items = validation.Skip(start).Take(evalBatchSize).ToList();
            using var b = Collate(items, 0, 0);
            using var output = model.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"], b["masked_positions"]);
            var mlmLogits = output.MlmLogits.to(ScalarType.Float32);
            mlmLossSum += functional.cross_entropy(mlmLogits, b["masked_labels"], reduction: Reduction.Sum).item<float>();
            mlmCorrect += mlmLogits.argmax(-1).eq(b["masked_labels"]).sum().item<long>();
            mlmCount += b["masked_labels"].shape[0];
            if (!nsp) continue;
            var nspLogits = output.NspLogits!.to(ScalarType.Float32);
            nspLossSum += functional.cross_entropy(nspLogits, b["next_sentence_label"], reduction: Reduction.Sum).item<float>();
            nspCorrect += nspLogits.argmax(-1).eq(b["next_sentence_label"]).sum().item<long>();
            nspCount += items.Count;
        }
        double mlmLoss = mlmLossSum / Math.Max(1, mlmCount), nspLoss = nspLossSum / Math.Max(1, nspCount);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = nsp ? mlmLoss + nspLoss : mlmLoss,
            ["mlm_loss"] = mlmLoss,
            ["mlm_accuracy"] = (double)mlmCorrect / Math.Max(1, mlmCount),
            ["perplexity"] = Math.Exp(mlmLoss),
        };
        if (nsp)
        {
            metrics["nsp_loss"] = nspLoss;
            metrics["nsp_accuracy"] = (double)nspCorrect / Math.Max(1, nspCount);
        }
        return metrics;
    }

    /// <summary>The vocab.txt the model came with (continued pre-training): saved folders get a copy of it, byte for
    /// byte, rather than the tokenizer's own writing of the same tokens.</summary>
    public string? VocabFile { get; init; }

    public void SaveModel(string dir)
    {
        ModelFolder.Save(model, dir);
        tokenizer.Save(dir);
        if (VocabFile != null) File.Copy(VocabFile, Path.Combine(dir, BertTokenizer.VocabFileName), overwrite: true);
    }
}
