using BertSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Modeling;

// The module tree mirrors HuggingFace's modeling_bert.py field for field, so registered parameter names are
// HF state-dict keys ("bert.encoder.layer.0.attention.self.query.weight") and checkpoints map one to one.
// Shapes: B batch, L sequence length, H hidden size, N heads, D head dim (H = N·D), I intermediate size.

/// <summary>What the encoder returns; extra outputs only when asked for (they cost memory).</summary>
public sealed class BertOutput : IDisposable
{
    public required Tensor LastHiddenState { get; init; }     // [B, L, H]
    public Tensor? PoolerOutput { get; init; }                 // [B, H]
    public List<Tensor>? HiddenStates { get; init; }           // (layers + 1) × [B, L, H]
    public List<Tensor>? Attentions { get; init; }             // layers × [B, N, L, L]

    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput?.Dispose();
        HiddenStates?.ForEach(t => t.Dispose());
        Attentions?.ForEach(t => t.Dispose());
    }
}

internal static class Activations
{
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "gelu" => functional.gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => functional.relu(x),
        "tanh" => x.tanh(),
        _ => throw new BertSharpException($"unsupported hidden_act '{name}'"),
    };
}

public sealed class BertEmbeddings : Module
{
    private readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    private readonly LayerNorm LayerNorm;
    private readonly double dropoutP;
    private readonly BertKernels kernels;

    public BertEmbeddings(BertConfig c, BertKernels kernels) : base(nameof(BertEmbeddings))
    {
        this.kernels = kernels;
        word_embeddings = Embedding(c.VocabSize, c.HiddenSize, padding_idx: c.PadTokenId);
        position_embeddings = Embedding(c.MaxPositionEmbeddings, c.HiddenSize);
        token_type_embeddings = Embedding(c.TypeVocabSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps);
        dropoutP = c.HiddenDropoutProb;
        RegisterComponents();
    }

    public Parameter WordEmbeddingWeight => word_embeddings.weight!;

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="tokenTypeIds">[B, L] int64</param>
    public Tensor Forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        long L = inputIds.shape[1];
        var positions = Scalars.Range(L, inputIds.device).unsqueeze(0); // [1, L]
        var x = word_embeddings.call(inputIds).Plus(token_type_embeddings.call(tokenTypeIds)).Plus(position_embeddings.call(positions));
        return kernels.Dropout(kernels.LayerNorm(x, LayerNorm), dropoutP, training).MoveToOuterDisposeScope();   // [B, L, H]
    }
}

public sealed class BertSelfAttention : Module
{
    private readonly Linear query, key, value;
    private readonly int heads, headDim;
    private readonly double dropoutP;
    private readonly BertKernels kernels;

    public BertSelfAttention(BertConfig c, BertKernels kernels) : base(nameof(BertSelfAttention))
    {
        this.kernels = kernels;
        heads = c.NumAttentionHeads;
        headDim = c.HeadDim;
        dropoutP = c.AttentionProbsDropoutProb;
        query = Linear(c.HiddenSize, c.HiddenSize);
        key = Linear(c.HiddenSize, c.HiddenSize);
        value = Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    /// <param name="x">[B, L, H]</param>
    /// <param name="additiveMask">[B, 1, 1, L]: 0 for real keys, the dtype's minimum for padding; null when nothing is padded</param>
    /// <param name="probs">when not null, receives the attention probabilities [B, N, L, L]</param>
    public Tensor Forward(Tensor x, Tensor? additiveMask, List<Tensor>? probs)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], L = x.shape[1];
        // One fused projection for Q, K and V (one GEMM instead of three); the parameters keep HF's names.
        var w = cat(new[] { query.weight!, key.weight!, value.weight! }).to(x.dtype);
        var b = cat(new[] { query.bias!, key.bias!, value.bias! }).to(x.dtype);
        var qkv = functional.linear(x, w, b).view(B, L, 3, heads, headDim).permute(2, 0, 3, 1, 4); // [3, B, N, L, D]
        // unbind, not qkv[0..2]: the backward of an index is a zero-filled [3, B, N, L, D] per part, then two sums.
        var parts = qkv.unbind(0);
        var (q, k, v) = (parts[0], parts[1], parts[2]);
        var context = kernels.Attention(q, k, v, additiveMask, dropoutP, training, probs);      // [B, N, L, D]
        probs?[^1].MoveToOuterDisposeScope();                                                // the caller keeps the probabilities
        return context.transpose(1, 2).reshape(B, L, heads * headDim).MoveToOuterDisposeScope(); // [B, L, H]
    }
}

/// <summary>Dense + dropout + residual + LayerNorm: HF's BertSelfOutput and BertOutput have this same shape.</summary>
public sealed class BertResidualOutput : Module
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly double dropoutP;
    private readonly BertKernels kernels;

    public BertResidualOutput(BertConfig c, int inFeatures, BertKernels kernels) : base(nameof(BertResidualOutput))
    {
        this.kernels = kernels;
        dense = Linear(inFeatures, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps);
        dropoutP = c.HiddenDropoutProb;
        RegisterComponents();
    }

    /// <param name="x">[B, L, inFeatures]</param>
    /// <param name="residual">[B, L, H]</param>
    public Tensor Forward(Tensor x, Tensor residual)
    {
        using var d = BertKernels.Linear(dense, x);                                            // [B, L, H]
        return kernels.DropoutAddLayerNorm(d, residual, LayerNorm, dropoutP, training);        // LayerNorm(dropout(d) + residual)
    }
}

public sealed class BertAttention : Module
{
    private readonly BertSelfAttention self;
    private readonly BertResidualOutput output;

    public BertAttention(BertConfig c, BertKernels kernels) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c, kernels);
        output = new BertResidualOutput(c, c.HiddenSize, kernels);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor? additiveMask, List<Tensor>? probs)
    {
        using var context = self.Forward(x, additiveMask, probs);
        return output.Forward(context, x);
    }
}

public sealed class BertIntermediate : Module
{
    private readonly Linear dense;
    private readonly string act;

    public BertIntermediate(BertConfig c) : base(nameof(BertIntermediate))
    {
        dense = Linear(c.HiddenSize, c.IntermediateSize);
        act = c.HiddenAct;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var h = BertKernels.Linear(dense, x);
        return Activations.Apply(act, h);
    }
}

public sealed class BertLayer : Module
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertResidualOutput output;

    public BertLayer(BertConfig c, BertKernels kernels) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c, kernels);
        intermediate = new BertIntermediate(c);
        output = new BertResidualOutput(c, c.IntermediateSize, kernels);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor? additiveMask, List<Tensor>? probs)
    {
        using var a = attention.Forward(x, additiveMask, probs);
        using var i = intermediate.Forward(a);
        return output.Forward(i, a);
    }
}

public sealed class BertEncoder : Module
{
    private readonly ModuleList<BertLayer> layer;

    public BertEncoder(BertConfig c, BertKernels kernels) : base(nameof(BertEncoder))
    {
        layer = new ModuleList<BertLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new BertLayer(c, kernels)).ToArray());
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor? additiveMask, List<Tensor>? hidden, List<Tensor>? probs)
    {
        var h = x.alias();
        foreach (var l in layer)
        {
            var next = l.Forward(h, additiveMask, probs);
            h.Dispose();
            h = next;
            hidden?.Add(h.alias());
        }
        return h;
    }
}

public sealed class BertPooler : Module
{
    private readonly Linear dense;

    public BertPooler(BertConfig c) : base(nameof(BertPooler))
    {
        dense = Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    /// <summary>tanh(dense(h[:, 0])): the [CLS] representation.</summary>
    public Tensor Forward(Tensor lastHidden)
    {
        using var cls = lastHidden.select(1, 0);
        using var d = BertKernels.Linear(dense, cls);
        return d.tanh();
    }
}

/// <summary>BERT's encoder: embeddings, transformer layers and (optionally) the pooler.</summary>
public sealed class BertModel : Module
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;

    public BertConfig Config { get; }
    public ComputeOptions Compute { get; }

    public BertModel(BertConfig config, ComputeOptions? compute = null, bool addPoolingLayer = true) : base(nameof(BertModel))
    {
        config.Validate();
        Config = config;
        Compute = compute ?? ComputeOptions.Default;
        embeddings = new BertEmbeddings(config, Compute.Kernels);
        encoder = new BertEncoder(config, Compute.Kernels);
        if (addPoolingLayer) pooler = new BertPooler(config);
        RegisterComponents();
    }

    public BertEmbeddings Embeddings => embeddings;

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="tokenTypeIds">[B, L] int64, or null for all zeros</param>
    /// <param name="attentionMask">[B, L], 1 for real tokens and 0 for padding, or null for no padding</param>
    public BertOutput Forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
        bool outputHiddenStates = false, bool outputAttentions = false)
    {
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", inputIds.shape)}]");
        if (inputIds.shape[1] > Config.MaxPositionEmbeddings)
            throw new BertSharpException($"sequence length {inputIds.shape[1]} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}");
        using var scope = NewDisposeScope();
        var typeIds = tokenTypeIds ?? zeros_like(inputIds);
        var emb = embeddings.Forward(inputIds, typeIds);                                   // [B, L, H]
        if (Compute.Dtype != emb.dtype) emb = emb.to(Compute.Dtype);
        // HF's extended mask: (1 - mask) * finfo.min on the key axis, [B, 1, 1, L].
        // No mask at all when nothing is padded (pre-training batches are full): one pass less per layer, and
        // scaled_dot_product_attention may then take its fused kernel.
        Tensor? additive = null;
        if (attentionMask is not null && attentionMask.With(0L, (m, zero) => m.eq(zero)).any().item<bool>())
        {
            var keep = attentionMask.to(emb.dtype);
            additive = ones_like(keep).sub_(keep).With(emb.dtype == ScalarType.Float64 ? double.MinValue : EmbMin(emb.dtype), (t, min) => t.mul(min))
                .view(attentionMask.shape[0], 1, 1, attentionMask.shape[1]);
        }
        var hidden = outputHiddenStates ? new List<Tensor> { emb.alias() } : null;
        var probs = outputAttentions ? new List<Tensor>() : null;
        var last = encoder.Forward(emb, additive, hidden, probs);
        var pooled = pooler?.Forward(last);
        return new BertOutput
        {
            LastHiddenState = last.MoveToOuterDisposeScope(),
            PoolerOutput = pooled?.MoveToOuterDisposeScope(),
            HiddenStates = hidden?.Select(t => t.MoveToOuterDisposeScope()).ToList(),
            Attentions = probs?.Select(t => t.MoveToOuterDisposeScope()).ToList(),
        };
    }

    static double EmbMin(ScalarType t) => t switch
    {
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        _ => float.MinValue,
    };
}
