using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>
/// Extractive question answering (SQuAD) for the Trainer: the training windows in a seeded order per epoch, the
/// loss (mean of start and end cross-entropy, as HF's BertForQuestionAnswering), and evaluation by the official
/// SQuAD scores after decoding every evaluation question over all its windows.
/// </summary>
public sealed class QaTask : ITrainingTask
{
    private readonly BertForQuestionAnswering model;
    private readonly BertTokenizer tokenizer;
    private readonly QaFeatureSet train;
    private readonly QaFeatureSet? eval;
    private readonly bool scoreVersion2;
    private readonly int batchSize, evalBatchSize;
    private readonly long seed;

    public QaTask(BertForQuestionAnswering model, BertTokenizer tokenizer, QaSettings settings, QaFeatureSet train,
        QaFeatureSet? eval, int batchSize, long seed, int evalBatchSize = 0, bool scoreVersion2 = false)
    {
        if (batchSize < 1) throw new BertSharpException($"--batch-size must be at least 1, got {batchSize}");
        if (train.Features.Count == 0) throw new BertSharpException("the training data produced no windows");
        settings.Validate(model.Config.MaxPositionEmbeddings);
        this.model = model;
        this.tokenizer = tokenizer;
        Settings = settings;
        this.train = train;
        this.eval = eval;
        this.batchSize = batchSize;
        this.evalBatchSize = evalBatchSize > 0 ? evalBatchSize : Math.Max(batchSize, 64);
        this.seed = seed;
        this.scoreVersion2 = scoreVersion2 || settings.Version2WithNegative;
    }

    public QaSettings Settings { get; }
    public BertWithHead Model => model;
    public int BatchesPerEpoch => (train.Features.Count + batchSize - 1) / batchSize;
    public string SelectionMetric => "f1";
    public bool HigherIsBetter => true;

    /// <summary>The answers and scores of the last evaluation (answers in evaluation-question order).</summary>
    public QaEvaluation? LastEvaluation { get; private set; }

    public IEnumerable<Batch> TrainBatches(int epoch, int start)
    {
        var order = Enumerable.Range(0, train.Features.Count).ToArray();
        var shuffle = SplitMix.For(seed, 0x51414F /* "QAO" */, epoch);
        shuffle.Shuffle(order);
        for (int b = start; b < BatchesPerEpoch; b++)
        {
            var items = new List<QaFeature>(batchSize);
            for (int i = b * batchSize; i < Math.Min(order.Length, (b + 1) * batchSize); i++) items.Add(train.Features[order[i]]);
            yield return Collate(items, tokenizer.PadId, epoch, b);
        }
    }

    /// <summary>Pads to the longest window of the batch.</summary>
    public static Batch Collate(IReadOnlyList<QaFeature> items, int padId, int epoch = 0, int index = 0)
    {
        var tensors = Batching.PaddedInputs(items.Select(f => f.InputIds).ToList(), items.Select(f => f.TokenTypeIds).ToList(), padId, out _);
        var device = TorchRuntime.Device;
        tensors["start_positions"] = tensor(items.Select(f => (long)f.StartPosition).ToArray(), device: device);
        tensors["end_positions"] = tensor(items.Select(f => (long)f.EndPosition).ToArray(), device: device);
        return new Batch { Sequences = items.Count, Epoch = epoch, Index = index, Tensors = tensors };
    }

    /// <summary>
    /// (CE(start) + CE(end)) / 2 over the sequence positions, padding excluded (its logits are masked out, so
    /// dynamic padding does not change the loss). <paramref name="reduction"/> Sum gives per-batch sums.
    /// </summary>
    public static (Tensor Total, Tensor Start, Tensor End) Loss(Tensor startLogits, Tensor endLogits, Tensor attentionMask,
        Tensor startPositions, Tensor endPositions, Reduction reduction = Reduction.Mean)
    {
        using var pad = attentionMask.eq(0);
        using var s = startLogits.to(ScalarType.Float32).masked_fill(pad, -1e4);
        using var e = endLogits.to(ScalarType.Float32).masked_fill(pad, -1e4);
        var startLoss = functional.cross_entropy(s, startPositions, reduction: reduction);
        var endLoss = functional.cross_entropy(e, endPositions, reduction: reduction);
        return ((startLoss + endLoss) / 2, startLoss, endLoss);
    }

    public BatchLoss Loss(Batch b)
    {
        var (start, end) = model.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]);
        using (start)
        using (end)
        {
            var (total, s, e) = Loss(start, end, b["attention_mask"], b["start_positions"], b["end_positions"]);
            return new BatchLoss(total, new Dictionary<string, Tensor> { ["start_loss"] = s, ["end_loss"] = e });
        }
    }

    /// <summary>Start and end logits of every window (model in eval mode, no gradients), and the summed loss.</summary>
    public static (List<QaLogits> Logits, double LossSum) Run(BertForQuestionAnswering model, IReadOnlyList<QaFeature> features,
        int batchSize, int padId, bool withLoss = false, Action<int>? progress = null)
    {
        var result = new List<QaLogits>(features.Count);
        double lossSum = 0;
        using var _ = no_grad();
        for (int start = 0; start < features.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var items = features.Skip(start).Take(batchSize).ToList();
            using var b = Collate(items, padId);
            var (s, e) = model.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]);
            if (withLoss)
            {
                var (total, _, _) = Loss(s, e, b["attention_mask"], b["start_positions"], b["end_positions"], Reduction.Sum);
                lossSum += total.item<float>();
            }
            var sv = s.to(ScalarType.Float32).cpu().data<float>().ToArray();
            var ev = e.to(ScalarType.Float32).cpu().data<float>().ToArray();
            int L = (int)s.shape[1];
            for (int i = 0; i < items.Count; i++)
                result.Add(new QaLogits(sv.AsSpan(i * L, items[i].Length).ToArray(), ev.AsSpan(i * L, items[i].Length).ToArray()));
            progress?.Invoke(result.Count);
        }
        return (result, lossSum);
    }

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        if (eval is null) return new Dictionary<string, double>();
        var (logits, lossSum) = Run(model, eval.Features, evalBatchSize, tokenizer.PadId, withLoss: true);
        var answers = QaPostProcessing.Decode(eval, logits, Settings);
        var predictions = answers.ToDictionary(a => a.Id, a => a.Text);
        var scores = SquadScoring.Evaluate(eval.Examples, predictions, scoreVersion2);
        LastEvaluation = new QaEvaluation(answers, scores);
        var metrics = scores.ToDictionary();
        metrics.Remove("total");
        metrics["loss"] = lossSum / Math.Max(1, eval.Features.Count);
        return metrics;
    }

    public void SaveModel(string dir)
    {
        ModelFolder.Save(model, dir);
        tokenizer.Save(dir);
        Settings.Save(dir);
    }
}
