using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Modeling;

/// <summary>A BERT model with a task head, as HF's BertFor* classes: the encoder is always the "bert" child.</summary>
public abstract class BertWithHead : Module
{
    protected BertWithHead(string name, BertConfig config) : base(name) { Config = config; }

    public BertConfig Config { get; }
    public abstract BertModel Bert { get; }

    /// <summary>HF class name written to config.json "architectures".</summary>
    public abstract string Architecture { get; }

    /// <summary>State-dict keys that checkpoints may carry but that are aliases of other parameters here.</summary>
    public virtual IReadOnlyCollection<string> TiedAliasKeys => Array.Empty<string>();

    /// <summary>HF's _init_weights: normal(0, initializer_range) for Linear and Embedding weights, zero biases,
    /// LayerNorm weight 1 / bias 0, the padding embedding row zero.</summary>
    public void InitWeights()
    {
        using var _ = no_grad();
        double std = Config.InitializerRange;
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("LayerNorm.weight") || name.EndsWith("LayerNorm.gamma")) p.fill_(1.0);
            else if (name.EndsWith(".bias") || name.EndsWith("LayerNorm.beta") || name == "cls.predictions.bias") p.zero_();
            else p.normal_(0, std);
        }
        Bert.Embeddings.WordEmbeddingWeight[Config.PadTokenId].zero_();
    }

    public static BertWithHead Create(string architecture, BertConfig config) => architecture switch
    {
        "BertForPreTraining" or "BertForMaskedLM" or "BertModel" => new BertForPreTraining(config),
        "BertForSequenceClassification" => new BertForSequenceClassification(config),
        "BertForTokenClassification" => new BertForTokenClassification(config),
        "BertForQuestionAnswering" => new BertForQuestionAnswering(config),
        _ => throw new BertSharpException($"unsupported architecture '{architecture}' (BertForPreTraining, BertForMaskedLM, BertModel, BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering)"),
    };
}

/// <summary>dense → activation → LayerNorm, then the decoder tied to the word embeddings plus a bias.</summary>
public sealed class BertPredictionHeadTransform : Module
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly string act;

    public BertPredictionHeadTransform(BertConfig c) : base(nameof(BertPredictionHeadTransform))
    {
        dense = Linear(c.HiddenSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps);
        act = c.HiddenAct;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var d = Mixed.Linear(dense, x);
        using var a = Activations.Apply(act, d);
        return Mixed.LayerNorm(LayerNorm, a);
    }
}

public sealed class BertLMPredictionHead : Module
{
    private readonly BertPredictionHeadTransform transform;
    private readonly Parameter bias;

    public BertLMPredictionHead(BertConfig c) : base(nameof(BertLMPredictionHead))
    {
        transform = new BertPredictionHeadTransform(c);
        bias = Parameter(zeros(c.VocabSize));
        RegisterComponents();
    }

    /// <summary>[..., H] → [..., V]; the decoder weight is the word-embedding matrix (tied, as in HF).</summary>
    public Tensor Forward(Tensor x, Tensor wordEmbeddings)
    {
        using var t = transform.Forward(x);
        if (t.dtype == wordEmbeddings.dtype) return functional.linear(t, wordEmbeddings, bias);
        using var w = wordEmbeddings.to(t.dtype);
        using var b = bias.to(t.dtype);
        return functional.linear(t, w, b);
    }

    /// <summary>Mean cross-entropy of the predictions at [M, H] hidden states against [M] labels (-100 ignored),
    /// without the [M, V] logits when gradients are needed (<see cref="FusedLinearCrossEntropy"/>); with a
    /// <paramref name="divisor"/>, the summed losses over it instead.</summary>
    public Tensor Loss(Tensor x, Tensor wordEmbeddings, Tensor labels, long? divisor = null)
    {
        using var t = transform.Forward(x);
        return FusedLinearCrossEntropy.Loss(t, wordEmbeddings, bias, labels, divisor: divisor);
    }
}

public sealed class BertPreTrainingHeads : Module
{
    private readonly BertLMPredictionHead predictions;
    private readonly Linear seq_relationship;

    public BertPreTrainingHeads(BertConfig c) : base(nameof(BertPreTrainingHeads))
    {
        predictions = new BertLMPredictionHead(c);
        seq_relationship = Linear(c.HiddenSize, 2);
        RegisterComponents();
    }

    public Tensor Mlm(Tensor x, Tensor wordEmbeddings) => predictions.Forward(x, wordEmbeddings);
    public Tensor MlmLoss(Tensor x, Tensor wordEmbeddings, Tensor labels, long? divisor = null) => predictions.Loss(x, wordEmbeddings, labels, divisor);
    public Tensor Nsp(Tensor pooled) => Mixed.Linear(seq_relationship, pooled);
}

public sealed class PreTrainingOutput : IDisposable
{
    /// <summary>[B, L, V], or [P, V] when only masked positions were asked for.</summary>
    public required Tensor MlmLogits { get; init; }
    public required Tensor NspLogits { get; init; }           // [B, 2]
    public required BertOutput Encoder { get; init; }
    public void Dispose() { MlmLogits.Dispose(); NspLogits.Dispose(); Encoder.Dispose(); }
}

/// <summary>Masked-language-model and next-sentence-prediction heads (HF BertForPreTraining).</summary>
public sealed class BertForPreTraining : BertWithHead
{
    private readonly BertModel bert;
    private readonly BertPreTrainingHeads cls;

    public BertForPreTraining(BertConfig config) : base(nameof(BertForPreTraining), config)
    {
        bert = new BertModel(config);
        cls = new BertPreTrainingHeads(config);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertForPreTraining";
    public override IReadOnlyCollection<string> TiedAliasKeys { get; } = new[] { "cls.predictions.decoder.weight", "cls.predictions.decoder.bias" };

    /// <param name="maskedPositions">when given, [P] flat indices into B·L: MLM logits are computed only there
    /// (the vocabulary projection is the costliest part of the head)</param>
    public PreTrainingOutput Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
        Tensor? maskedPositions = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask, outputHiddenStates, outputAttentions);
        Tensor mlm;
        if (maskedPositions is null)
            mlm = MlmLogitsFor(enc.LastHiddenState);
        else
        {
            using var flat = enc.LastHiddenState.reshape(-1, Config.HiddenSize);
            using var picked = flat.index_select(0, maskedPositions);
            mlm = MlmLogitsFor(picked);
        }
        return new PreTrainingOutput { MlmLogits = mlm, NspLogits = NspLogitsFor(enc.PoolerOutput!), Encoder = enc };
    }

    /// <summary>The MLM head alone: [..., H] hidden states → [..., V] logits.</summary>
    public Tensor MlmLogitsFor(Tensor hidden) => cls.Mlm(hidden, bert.Embeddings.WordEmbeddingWeight);

    /// <summary>The MLM head's mean loss at [M, H] hidden states against [M] labels (see <see cref="PretrainingLoss"/>).</summary>
    public Tensor MlmLossFor(Tensor hidden, Tensor labels) => cls.MlmLoss(hidden, bert.Embeddings.WordEmbeddingWeight, labels);

    /// <summary>The NSP head alone: [B, H] pooled output → [B, 2] logits.</summary>
    public Tensor NspLogitsFor(Tensor pooled) => cls.Nsp(pooled);

    /// <summary>The pre-training loss of a batch, as <see cref="Loss"/> of <see cref="Forward"/>'s outputs at the masked
    /// positions, but the MLM part without the [P, V] logits when training (what the trainer's step uses).</summary>
    /// <param name="maskedPositions">[P] flat indices into B·L</param>
    /// <param name="mlmLabels">[P] int64</param>
    /// <remarks>On a CPU with several libtorch threads the batch is cut into shards of whole sequences, run at once
    /// (<see cref="DataParallel"/>); each shard's sums are divided by the whole batch's counts, so the loss and
    /// gradients are those of the whole batch.</remarks>
    public (Tensor Total, Tensor Mlm, Tensor Nsp) PretrainingLoss(Tensor inputIds, Tensor tokenTypeIds, Tensor attentionMask,
        Tensor maskedPositions, Tensor mlmLabels, Tensor nspLabels)
    {
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        int shards = DataParallel.Shards(batch, inputIds.device);
        long mlmCount = shards == 1 ? 0 : mlmLabels.ne(FusedLinearCrossEntropy.IgnoreIndex).sum().item<long>();
        long nspCount = shards == 1 ? 0 : nspLabels.ne(FusedLinearCrossEntropy.IgnoreIndex).sum().item<long>();
        if (mlmCount == 0 || nspCount == 0)   // one shard, or nothing to average over (NaN, as the unsharded loss)
            return PretrainingLoss(inputIds, tokenTypeIds, attentionMask, maskedPositions, mlmLabels, nspLabels, null, null);

        using var sequenceOf = maskedPositions.div(length, rounding_mode: RoundingMode.floor);
        var parameters = this.parameters().Where(p => p.requires_grad).ToList<Tensor>();
        var sums = DataParallel.Run(parameters, shards, k =>
        {
            var (b0, b1) = DataParallel.Range(batch, shards, k);
            var mine = sequenceOf.ge(b0).logical_and_(sequenceOf.lt(b1)).nonzero().squeeze(1);
            var (total, mlm, nsp) = PretrainingLoss(inputIds.narrow(0, b0, b1 - b0), tokenTypeIds.narrow(0, b0, b1 - b0),
                attentionMask.narrow(0, b0, b1 - b0), maskedPositions.index_select(0, mine).sub_(b0 * length),
                mlmLabels.index_select(0, mine), nspLabels.narrow(0, b0, b1 - b0), mlmCount, nspCount);
            return new[] { total, mlm, nsp };
        });
        return (sums[0], sums[1], sums[2]);
    }

    /// <param name="mlmDivisor">null: the mean over this batch's labelled positions; else their summed loss over it</param>
    /// <param name="nspDivisor">likewise for the sequences' NSP loss</param>
    private (Tensor Total, Tensor Mlm, Tensor Nsp) PretrainingLoss(Tensor inputIds, Tensor tokenTypeIds, Tensor attentionMask,
        Tensor maskedPositions, Tensor mlmLabels, Tensor nspLabels, long? mlmDivisor, long? nspDivisor)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        using var flat = enc.LastHiddenState.reshape(-1, Config.HiddenSize);
        using var picked = flat.index_select(0, maskedPositions);
        var mlm = cls.MlmLoss(picked, bert.Embeddings.WordEmbeddingWeight, mlmLabels, mlmDivisor);
        using var nspLogits = NspLogitsFor(enc.PoolerOutput!);
        using var nspF = nspLogits.to(ScalarType.Float32);
        var nsp = nspDivisor is long d
            ? functional.cross_entropy(nspF, nspLabels, reduction: Reduction.Sum).div(d)
            : functional.cross_entropy(nspF, nspLabels);
        return (mlm + nsp, mlm, nsp);
    }

    /// <summary>HF's pre-training loss: mean cross-entropy over labelled MLM positions (label -100 = ignored)
    /// plus mean cross-entropy of NSP. Returns (total, mlm, nsp), each a scalar.</summary>
    /// <param name="mlmLogits">[..., V]</param>
    /// <param name="mlmLabels">same leading shape as the logits, int64</param>
    public static (Tensor Total, Tensor Mlm, Tensor Nsp) Loss(Tensor mlmLogits, Tensor mlmLabels, Tensor nspLogits, Tensor nspLabels)
    {
        using var flatLogits = mlmLogits.reshape(-1, mlmLogits.shape[^1]).to(ScalarType.Float32);
        using var flatLabels = mlmLabels.reshape(-1);
        var mlm = functional.cross_entropy(flatLogits, flatLabels, ignore_index: -100);
        using var nspF = nspLogits.to(ScalarType.Float32);
        var nsp = functional.cross_entropy(nspF, nspLabels);
        return (mlm + nsp, mlm, nsp);
    }
}

/// <summary>[CLS] pooled output → dropout → linear: classification (num_labels ≥ 2) or regression (1).</summary>
public sealed class BertForSequenceClassification : BertWithHead
{
    private readonly BertModel bert;
    private readonly double dropoutP;
    private readonly Linear classifier;

    public BertForSequenceClassification(BertConfig config) : base(nameof(BertForSequenceClassification), config)
    {
        bert = new BertModel(config);
        dropoutP = config.ClassifierDropout ?? config.HiddenDropoutProb;
        classifier = Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertForSequenceClassification";

    /// <returns>[B, num_labels]</returns>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        using var d = FastDropout.Apply(enc.PoolerOutput!, dropoutP, training);
        return Mixed.Linear(classifier, d);
    }
}

/// <summary>Per-token linear classifier over the last hidden state (no pooler, as in HF).</summary>
public sealed class BertForTokenClassification : BertWithHead
{
    private readonly BertModel bert;
    private readonly double dropoutP;
    private readonly Linear classifier;

    public BertForTokenClassification(BertConfig config) : base(nameof(BertForTokenClassification), config)
    {
        bert = new BertModel(config, addPoolingLayer: false);
        dropoutP = config.ClassifierDropout ?? config.HiddenDropoutProb;
        classifier = Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertForTokenClassification";

    /// <returns>[B, L, num_labels]</returns>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        using var d = FastDropout.Apply(enc.LastHiddenState, dropoutP, training);
        return Mixed.Linear(classifier, d);
    }
}

/// <summary>Start and end logits for extractive question answering (no pooler, as in HF).</summary>
public sealed class BertForQuestionAnswering : BertWithHead
{
    private readonly BertModel bert;
    private readonly Linear qa_outputs;

    public BertForQuestionAnswering(BertConfig config) : base(nameof(BertForQuestionAnswering), config)
    {
        bert = new BertModel(config, addPoolingLayer: false);
        qa_outputs = Linear(config.HiddenSize, 2);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertForQuestionAnswering";

    /// <returns>start and end logits, [B, L] each</returns>
    public (Tensor Start, Tensor End) Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        using var logits = Mixed.Linear(qa_outputs, enc.LastHiddenState);        // [B, L, 2]
        var parts = logits.split(1, -1);
        var start = parts[0].squeeze(-1);
        var end = parts[1].squeeze(-1);
        parts[0].Dispose(); parts[1].Dispose();
        return (start, end);
    }
}
