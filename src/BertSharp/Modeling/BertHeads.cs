using BertSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Modeling;

/// <summary>A BERT model with a task head, as HF's BertFor* classes: the encoder is always the "bert" child.</summary>
public abstract class BertWithHead : Module
{
    protected BertWithHead(string name, BertConfig config, ComputeOptions? compute) : base(name)
    {
        Config = config;
        Compute = compute ?? ComputeOptions.Default;
    }

    public BertConfig Config { get; }
    /// <summary>The dtype and kernels the model computes with, chosen when it was built.</summary>
    public ComputeOptions Compute { get; }
    public abstract BertModel Bert { get; }

    /// <summary>HF class name written to config.json "architectures".</summary>
    public abstract string Architecture { get; }

    /// <summary>Whether checkpoints of this model name the encoder's tensors without the "bert." prefix, as HF's bare
    /// BertModel does ("embeddings.word_embeddings.weight").</summary>
    public virtual bool BareKeys => false;

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
            if (name.EndsWith("LayerNorm.weight") || name.EndsWith("LayerNorm.gamma")) p.With(1.0, (t, one) => t.fill_(one));
            else if (name.EndsWith(".bias") || name.EndsWith("LayerNorm.beta") || name == "cls.predictions.bias") p.zero_();
            else p.normal_(0, std);
        }
        Bert.Embeddings.WordEmbeddingWeight[Config.PadTokenId].zero_();
    }

    /// <summary>For a model built <see cref="ComputeOptions.InferenceOnly"/> in a dtype other than float32: each Linear's
    /// weight and bias in that dtype, frozen (in float32, or for a model that trains, nothing changes). Called once the
    /// weights are loaded.</summary>
    public void StoreLinearWeightsInComputeDtype()
    {
        if (!Compute.InferenceOnly || Compute.Dtype == ScalarType.Float32) return;
        using var _ = no_grad();
        foreach (var (_, m) in named_modules())
        {
            if (m is not Linear linear) continue;
            var weight = linear.weight!;
            linear.weight = new Parameter(weight.to(Compute.Dtype), requires_grad: false);
            weight.Dispose();
            if (linear.bias is { } bias)
            {
                linear.bias = new Parameter(bias.to(Compute.Dtype), requires_grad: false);
                bias.Dispose();
            }
        }
    }

    public static BertWithHead Create(string architecture, BertConfig config, ComputeOptions? compute = null) => architecture switch
    {
        "BertForPreTraining" => new BertForPreTraining(config, compute),
        "BertForMaskedLM" => new BertForPreTraining(config, compute, nextSentenceHead: false),
        "BertModel" => new BertForEmbedding(config, compute),
        "BertForSequenceClassification" => new BertForSequenceClassification(config, compute),
        "BertForTokenClassification" => new BertForTokenClassification(config, compute),
        "BertForQuestionAnswering" => new BertForQuestionAnswering(config, compute),
        _ => throw new BertSharpException($"unsupported architecture '{architecture}' (BertForPreTraining, BertForMaskedLM, BertModel, BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering)"),
    };
}

/// <summary>dense → activation → LayerNorm, then the decoder tied to the word embeddings plus a bias.</summary>
public sealed class BertPredictionHeadTransform : Module
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly string act;
    private readonly BertKernels kernels;

    public BertPredictionHeadTransform(BertConfig c, BertKernels kernels) : base(nameof(BertPredictionHeadTransform))
    {
        this.kernels = kernels;
        dense = Linear(c.HiddenSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps);
        act = c.HiddenAct;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var d = BertKernels.Linear(dense, x);
        using var a = Activations.Apply(act, d);
        return kernels.LayerNorm(a, LayerNorm);
    }
}

public sealed class BertLMPredictionHead : Module
{
    private readonly BertPredictionHeadTransform transform;
    private readonly Parameter bias;
    private readonly BertKernels kernels;

    public BertLMPredictionHead(BertConfig c, BertKernels kernels) : base(nameof(BertLMPredictionHead))
    {
        this.kernels = kernels;
        transform = new BertPredictionHeadTransform(c, kernels);
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

    /// <summary>Mean cross-entropy of the predictions at [M, H] hidden states against [M] labels (-100 ignored); with a
    /// <paramref name="divisor"/>, the summed losses over it instead (<see cref="BertKernels.MlmLoss"/>).</summary>
    public Tensor Loss(Tensor x, Tensor wordEmbeddings, Tensor labels, long? divisor = null)
    {
        using var t = transform.Forward(x);                                  // [M, H]
        return kernels.MlmLoss(t, wordEmbeddings, bias, labels, divisor);
    }
}

/// <summary>HF's BertPreTrainingHeads (cls.predictions, cls.seq_relationship), or without the NSP head its
/// BertOnlyMLMHead (cls.predictions alone).</summary>
public sealed class BertPreTrainingHeads : Module
{
    private readonly BertLMPredictionHead predictions;
    private readonly Linear? seq_relationship;

    public BertPreTrainingHeads(BertConfig c, BertKernels kernels, bool nextSentenceHead = true) : base(nameof(BertPreTrainingHeads))
    {
        predictions = new BertLMPredictionHead(c, kernels);
        if (nextSentenceHead) seq_relationship = Linear(c.HiddenSize, 2);
        RegisterComponents();
    }

    public bool HasNextSentenceHead => seq_relationship is not null;
    public Tensor Mlm(Tensor x, Tensor wordEmbeddings) => predictions.Forward(x, wordEmbeddings);
    public Tensor MlmLoss(Tensor x, Tensor wordEmbeddings, Tensor labels, long? divisor = null) => predictions.Loss(x, wordEmbeddings, labels, divisor);
    public Tensor Nsp(Tensor pooled) =>
        BertKernels.Linear(seq_relationship ?? throw new InvalidOperationException("this model has no next-sentence-prediction head"), pooled);
}

public sealed class PreTrainingOutput : IDisposable
{
    /// <summary>[B, L, V], or [P, V] when only masked positions were asked for.</summary>
    public required Tensor MlmLogits { get; init; }
    /// <summary>[B, 2]; null for a model without the NSP head.</summary>
    public required Tensor? NspLogits { get; init; }
    public required BertOutput Encoder { get; init; }
    public void Dispose() { MlmLogits.Dispose(); NspLogits?.Dispose(); Encoder.Dispose(); }
}

/// <summary>Masked-language-model and next-sentence-prediction heads (HF BertForPreTraining); without the NSP head,
/// the masked-language model alone (HF BertForMaskedLM, whose checkpoints have no cls.seq_relationship; its pooler is
/// kept, unused, so that a checkpoint's pooler weights pass through to fine-tuning: transformers ignores them).</summary>
public sealed class BertForPreTraining : BertWithHead
{
    private readonly BertModel bert;
    private readonly BertPreTrainingHeads cls;

    public BertForPreTraining(BertConfig config, ComputeOptions? compute = null, bool nextSentenceHead = true) : base(nameof(BertForPreTraining), config, compute)
    {
        bert = new BertModel(config, Compute);
        cls = new BertPreTrainingHeads(config, Compute.Kernels, nextSentenceHead);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public bool HasNextSentenceHead => cls.HasNextSentenceHead;
    public override string Architecture => HasNextSentenceHead ? "BertForPreTraining" : "BertForMaskedLM";
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
        return new PreTrainingOutput { MlmLogits = mlm, NspLogits = HasNextSentenceHead ? NspLogitsFor(enc.PoolerOutput!) : null, Encoder = enc };
    }

    /// <summary>The MLM head alone: [..., H] hidden states → [..., V] logits.</summary>
    public Tensor MlmLogitsFor(Tensor hidden) => cls.Mlm(hidden, bert.Embeddings.WordEmbeddingWeight);

    /// <summary>The MLM head's mean loss at [M, H] hidden states against [M] labels (see <see cref="PretrainingLoss"/>).</summary>
    public Tensor MlmLossFor(Tensor hidden, Tensor labels) => cls.MlmLoss(hidden, bert.Embeddings.WordEmbeddingWeight, labels);

    /// <summary>The NSP head alone: [B, H] pooled output → [B, 2] logits.</summary>
    public Tensor NspLogitsFor(Tensor pooled) => cls.Nsp(pooled);

    /// <summary>The pre-training loss of a batch, as <see cref="Loss"/> of <see cref="Forward"/>'s outputs at the masked
    /// positions, with the MLM part by the kernels' <see cref="BertKernels.MlmLoss"/> (the fused one computes it without
    /// the [P, V] logits when training). Returns (total, mlm, nsp), each a float32 scalar.</summary>
    /// <param name="maskedPositions">[P] flat indices into B·L</param>
    /// <param name="mlmLabels">[P] int64</param>
    /// <param name="nspLabels">[B] int64</param>
    /// <param name="mlmDivisor">null: the mean over the labelled positions; else their summed loss over it (a shard of
    /// a larger batch passes the whole batch's count)</param>
    /// <param name="nspDivisor">likewise for the sequences' NSP loss</param>
    public (Tensor Total, Tensor Mlm, Tensor Nsp) PretrainingLoss(Tensor inputIds, Tensor tokenTypeIds, Tensor attentionMask,
        Tensor maskedPositions, Tensor mlmLabels, Tensor nspLabels, long? mlmDivisor = null, long? nspDivisor = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        var mlm = MlmLossAt(enc, maskedPositions, mlmLabels, mlmDivisor);
        using var nspLogits = NspLogitsFor(enc.PoolerOutput!);                                 // [B, 2]
        using var nspF = nspLogits.to(ScalarType.Float32);
        var nsp = nspDivisor is long d
            ? functional.cross_entropy(nspF, nspLabels, reduction: Reduction.Sum).With(d, (t, s) => t.div(s))
            : functional.cross_entropy(nspF, nspLabels);
        return (mlm.Plus(nsp), mlm, nsp);
    }

    /// <summary>The masked-LM loss of a batch alone (the objective without next-sentence prediction), as the MLM part of
    /// <see cref="PretrainingLoss"/>; a float32 scalar.</summary>
    public Tensor MaskedLmLoss(Tensor inputIds, Tensor tokenTypeIds, Tensor attentionMask, Tensor maskedPositions, Tensor mlmLabels, long? mlmDivisor = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        return MlmLossAt(enc, maskedPositions, mlmLabels, mlmDivisor);
    }

    Tensor MlmLossAt(BertOutput enc, Tensor maskedPositions, Tensor mlmLabels, long? mlmDivisor)
    {
        using var flat = enc.LastHiddenState.reshape(-1, Config.HiddenSize);                  // [B·L, H]
        using var picked = flat.index_select(0, maskedPositions);                              // [P, H]
        return cls.MlmLoss(picked, bert.Embeddings.WordEmbeddingWeight, mlmLabels, mlmDivisor);
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
        return (mlm.Plus(nsp), mlm, nsp);
    }
}

/// <summary>
/// HF's BertModel, the encoder without a task head (its pooler kept, so that its weights round-trip): what a
/// sentence-transformers model holds, whose last hidden states a pooling turns into sentence embeddings
/// (<see cref="Tasks.Embedding.SentencePooling"/>). Saved with the bare keys HF's BertModel writes.
/// </summary>
public sealed class BertForEmbedding : BertWithHead
{
    private readonly BertModel bert;

    public BertForEmbedding(BertConfig config, ComputeOptions? compute = null) : base(nameof(BertForEmbedding), config, compute)
    {
        bert = new BertModel(config, Compute);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertModel";
    public override bool BareKeys => true;

    /// <returns>the last hidden state, [B, L, H]</returns>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        return enc.LastHiddenState.alias();
    }
}

/// <summary>[CLS] pooled output → dropout → linear: classification (num_labels ≥ 2) or regression (1).</summary>
public sealed class BertForSequenceClassification : BertWithHead
{
    private readonly BertModel bert;
    private readonly double dropoutP;
    private readonly Linear classifier;

    public BertForSequenceClassification(BertConfig config, ComputeOptions? compute = null) : base(nameof(BertForSequenceClassification), config, compute)
    {
        bert = new BertModel(config, Compute);
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
        using var d = Compute.Kernels.Dropout(enc.PoolerOutput!, dropoutP, training);        // [B, H]
        return BertKernels.Linear(classifier, d);
    }
}

/// <summary>Per-token linear classifier over the last hidden state (no pooler, as in HF).</summary>
public sealed class BertForTokenClassification : BertWithHead
{
    private readonly BertModel bert;
    private readonly double dropoutP;
    private readonly Linear classifier;

    public BertForTokenClassification(BertConfig config, ComputeOptions? compute = null) : base(nameof(BertForTokenClassification), config, compute)
    {
        bert = new BertModel(config, Compute, addPoolingLayer: false);
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
        using var d = Compute.Kernels.Dropout(enc.LastHiddenState, dropoutP, training);      // [B, L, H]
        return BertKernels.Linear(classifier, d);
    }
}

/// <summary>Start and end logits for extractive question answering (no pooler, as in HF).</summary>
public sealed class BertForQuestionAnswering : BertWithHead
{
    private readonly BertModel bert;
    private readonly Linear qa_outputs;

    public BertForQuestionAnswering(BertConfig config, ComputeOptions? compute = null) : base(nameof(BertForQuestionAnswering), config, compute)
    {
        bert = new BertModel(config, Compute, addPoolingLayer: false);
        qa_outputs = Linear(config.HiddenSize, 2);
        RegisterComponents();
    }

    public override BertModel Bert => bert;
    public override string Architecture => "BertForQuestionAnswering";

    /// <returns>start and end logits, [B, L] each</returns>
    public (Tensor Start, Tensor End) Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null)
    {
        using var enc = bert.Forward(inputIds, tokenTypeIds, attentionMask);
        using var logits = BertKernels.Linear(qa_outputs, enc.LastHiddenState);        // [B, L, 2]
        var parts = logits.split(1, -1);
        var start = parts[0].squeeze(-1);
        var end = parts[1].squeeze(-1);
        parts[0].Dispose(); parts[1].Dispose();
        return (start, end);
    }
}
