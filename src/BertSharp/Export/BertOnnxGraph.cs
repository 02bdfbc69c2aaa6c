using BertSharp.Modeling;
using BertSharp.Tasks.Embedding;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace BertSharp.Export;

/// <summary>What the graph computes after the encoder, and so its outputs.</summary>
internal enum OnnxHead
{
    /// <summary>[CLS] pooled → classifier: logits and their softmax, probabilities [B, C].</summary>
    Classification,
    /// <summary>[CLS] pooled → classifier: logits and the sigmoid of each, probabilities [B, C] (multi-label).</summary>
    MultiLabelClassification,
    /// <summary>[CLS] pooled → one output: logits [B, 1].</summary>
    Regression,
    /// <summary>Per token: logits [B, L, C].</summary>
    Tagging,
    /// <summary>Per token: start_logits and end_logits [B, L].</summary>
    QuestionAnswering,
    /// <summary>token_embeddings [B, L, H] and their pooling (+ L2 normalisation), sentence_embedding [B, D].</summary>
    Embedding,
}

/// <summary>How to build the graph: the head, the embedding pooling, fused operators, int8 weights.</summary>
internal sealed record OnnxGraphSpec(OnnxHead Head, bool Optimize, bool QuantizeInt8)
{
    public IReadOnlyList<PoolingMode> Pooling { get; init; } = [PoolingMode.Mean];
    public bool Normalize { get; init; }
}

/// <summary>An input or output of the exported graph: its name, element type ("int64", "float32") and shape
/// (symbolic "batch"/"sequence" or a size).</summary>
public sealed record OnnxTensorInfo(string Name, string Type, IReadOnlyList<object> Shape, string Description);

/// <summary>
/// BERT as an ONNX graph, node for node what <see cref="BertModel"/> and the heads compute (HF modeling_bert.py):
/// embeddings (word + token type + absolute position, LayerNorm), per layer self-attention (scores scaled by
/// 1/sqrt(head_dim), padding masked with the float minimum as HF does), output dense + residual + LayerNorm,
/// intermediate dense + activation, output dense + residual + LayerNorm; then the head. Inputs input_ids,
/// attention_mask, token_type_ids (int64 [batch, sequence]); weights are initializers.
/// <para>With <see cref="OnnxGraphSpec.Optimize"/> it emits ONNX Runtime's fused com.microsoft operators instead:
/// EmbedLayerNormalization, Attention (Q/K/V in one [H, 3H] weight, the raw 0/1 mask), SkipLayerNormalization (the
/// output dense's bias, the residual and LayerNorm in one), BiasGelu (erf GELU) or FastGelu (tanh GELU).</para>
/// <para>With <see cref="OnnxGraphSpec.QuantizeInt8"/>, the encoder's linear layers (and the pooler) become
/// com.microsoft DynamicQuantizeMatMul: weights int8, symmetric per output column (scale = max|w| / 127), the
/// activations quantized to uint8 at run time. Embeddings, LayerNorms and the task's classifier stay float32;
/// with Optimize, so does the Q/K/V projection inside Attention (that operator takes float weights).</para>
/// </summary>
internal sealed class BertOnnxGraph
{
    public const int Opset = 17;
    /// <summary>The IR version of opset 17 (ONNX 1.12).</summary>
    public const long IrVersion = 8;

    readonly OnnxGraph g = new("bert");
    readonly BertConfig c;
    readonly OnnxGraphSpec spec;
    readonly Dictionary<string, Tensor> parameters;
    readonly List<OnnxTensorInfo> outputs = [];

    BertOnnxGraph(BertWithHead model, OnnxGraphSpec spec)
    {
        c = model.Config;
        this.spec = spec;
        parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
    }

    public static IReadOnlyList<OnnxTensorInfo> Inputs { get; } =
    [
        new("input_ids", "int64", ["batch", "sequence"], "token ids: [CLS] tokens [SEP] (pair: … [SEP] tokens [SEP]), padded with the pad id"),
        new("attention_mask", "int64", ["batch", "sequence"], "1 for real tokens, 0 for padding"),
        new("token_type_ids", "int64", ["batch", "sequence"], "0 for the first text, 1 for the second of a pair"),
    ];

    /// <summary>Builds the graph of <paramref name="model"/> (in evaluation mode: no dropout).</summary>
    public static (OnnxGraph Graph, IReadOnlyList<OnnxTensorInfo> Outputs) Build(BertWithHead model, OnnxGraphSpec spec)
    {
        var b = new BertOnnxGraph(model, spec);
        using (no_grad()) b.BuildAll();
        return (b.g, b.outputs);
    }

    void BuildAll()
    {
        string ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        string mask = g.Input("attention_mask", DataType.Int64, "batch", "sequence");
        string types = g.Input("token_type_ids", DataType.Int64, "batch", "sequence");
        string hidden = spec.Optimize ? FusedEncoder(ids, mask, types) : Encoder(ids, mask, types);
        g.Scope = "head";
        switch (spec.Head)
        {
            case OnnxHead.Classification:
            case OnnxHead.MultiLabelClassification:
            case OnnxHead.Regression:
                string logits = Linear(Pooler(hidden), "classifier", quantize: false, output: "logits");
                Output(logits, "logits", ["batch", c.NumLabels], spec.Head == OnnxHead.Regression ? "the predicted score (the head's one output)" : "classifier logits, by label id");
                if (spec.Head == OnnxHead.Classification)
                    Output(g.Node("Softmax", [logits], "probabilities", attributes: ("axis", -1L)), "probabilities", ["batch", c.NumLabels], "softmax of the logits, by label id");
                if (spec.Head == OnnxHead.MultiLabelClassification)
                    Output(g.Node("Sigmoid", [logits], "probabilities"), "probabilities", ["batch", c.NumLabels],
                        "sigmoid of each logit, by label id (multi-label: the labels whose probability reaches onnx_config.json's threshold)");
                break;
            case OnnxHead.Tagging:
                Output(Linear(hidden, "classifier", quantize: false, output: "logits"), "logits", ["batch", "sequence", c.NumLabels], "tag logits of each token, by label id (a word's tag is read at its first word piece)");
                break;
            case OnnxHead.QuestionAnswering:
                string both = Linear(hidden, "qa_outputs", quantize: false);                                      // [B, L, 2]
                var parts = g.Nodes("Split", [both, g.Int64s([1, 1], 2)], ["start", "end"], attributes: ("axis", -1L));
                g.Node("Squeeze", [parts[0], g.Int64s([-1], 1)], "start_logits");
                g.Node("Squeeze", [parts[1], g.Int64s([-1], 1)], "end_logits");
                Output("start_logits", "start_logits", ["batch", "sequence"], "answer-start logit of each token");
                Output("end_logits", "end_logits", ["batch", "sequence"], "answer-end logit of each token");
                break;
            case OnnxHead.Embedding:
                Output(hidden, "token_embeddings", ["batch", "sequence", c.HiddenSize], "the last hidden states");
                string pooled = Pool(hidden, mask);
                if (spec.Normalize)
                {
                    // functional.normalize: x / max(‖x‖₂, 1e-12)
                    string norm = g.Node("ReduceL2", [pooled], attributes: [("axes", new long[] { -1 }), ("keepdims", 1L)]);
                    pooled = g.Node("Div", [pooled, g.Node("Max", [norm, g.Scalar(1e-12f)])], "sentence_embedding");
                }
                else pooled = g.Node("Identity", [pooled], "sentence_embedding");
                Output(pooled, "sentence_embedding", ["batch", c.HiddenSize * spec.Pooling.Distinct().Count()],
                    $"{SentenceEmbeddingSettings.Describe(spec.Pooling.Distinct().Order().ToList())} pooling over the real tokens{(spec.Normalize ? ", L2-normalised" : "")}");
                break;
        }
    }

    void Output(string tensor, string name, object[] shape, string description)
    {
        g.Output(tensor, name, DataType.Float, shape);
        outputs.Add(new OnnxTensorInfo(name, "float32", shape, description));
    }

    // ---- weights ----

    Tensor Param(string name) =>
        parameters.TryGetValue(name, out var t) ? t : throw new BertSharpException($"the model has no parameter '{name}'");

    static float[] Values(Tensor t)
    {
        using var f = t.detach().to(ScalarType.Float32).cpu().contiguous();
        return f.data<float>().ToArray();
    }

    string Vector(string name) => g.Floats(name, Values(Param(name)), Param(name).shape[0]);

    /// <summary>A Linear's weight as the [in, out] matrix MatMul multiplies by (torch stores [out, in]).</summary>
    (float[] Values, long In, long Out) Transposed(string name)
    {
        var w = Param(name);
        using var t = w.t();
        return (Values(t), w.shape[1], w.shape[0]);
    }

    /// <summary>x·Wᵀ (+ b when <paramref name="withBias"/>): MatMul (+ Add), or DynamicQuantizeMatMul with int8
    /// weights. Returns the result and the bias initializer (for a fused operator that adds it).</summary>
    (string Y, string Bias) Dense(string x, string module, bool quantize, bool withBias, string? output = null)
    {
        var (w, inF, outF) = Transposed(module + ".weight");
        string bias = Vector(module + ".bias");
        if (quantize)
        {
            var (q, scale) = QuantizeColumns(w, inF, outF);
            string qw = g.Int8s(module + ".weight_quantized", q, inF, outF);
            string s = g.Floats(module + ".weight_scale", scale, outF);
            string zp = g.Int8s(module + ".weight_zero_point", new sbyte[outF], outF);
            return (g.Node("DynamicQuantizeMatMul", [x, qw, s, zp, withBias ? bias : ""], output, OnnxGraph.MicrosoftDomain), bias);
        }
        string mm = g.Node("MatMul", [x, g.Floats(module + ".weight", w, inF, outF)], withBias ? null : output);
        return (withBias ? g.Node("Add", [mm, bias], output) : mm, bias);
    }

    string Linear(string x, string module, bool quantize, string? output = null) => Dense(x, module, quantize, withBias: true, output).Y;

    /// <summary>Symmetric int8 per output column: q = round(w / s), s = max|w[:, j]| / 127 (1 for an all-zero column).</summary>
    internal static (sbyte[] Q, float[] Scale) QuantizeColumns(float[] w, long rows, long cols)
    {
        var scale = new float[cols];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < cols; j++) scale[j] = Math.Max(scale[j], Math.Abs(w[i * cols + j]));
        for (long j = 0; j < cols; j++) scale[j] = scale[j] > 0 ? scale[j] / 127f : 1f;
        var q = new sbyte[w.Length];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < cols; j++) q[i * cols + j] = (sbyte)Math.Clamp(MathF.Round(w[i * cols + j] / scale[j]), -127f, 127f);
        return (q, scale);
    }

    // ---- the plain encoder: standard ONNX operators ----

    string Encoder(string ids, string mask, string types)
    {
        g.Scope = "embeddings";
        string words = g.Node("Gather", [Vector2D("bert.embeddings.word_embeddings.weight"), ids]);               // [B, L, H]
        string typeVectors = g.Node("Gather", [Vector2D("bert.embeddings.token_type_embeddings.weight"), types]);
        string length = g.Node("Slice", [g.Node("Shape", [ids]), g.Int64s([1], 1), g.Int64s([2], 1)]);          // [1]: L
        string positions = g.Node("Slice", [Vector2D("bert.embeddings.position_embeddings.weight"), g.Int64s([0], 1), length, g.Int64s([0], 1)]); // [L, H]
        string x = LayerNorm(g.Node("Add", [g.Node("Add", [words, typeVectors]), positions]), "bert.embeddings.LayerNorm");
        // HF's extended mask: (1 - mask) · float.MinValue on the key axis, [B, 1, 1, L].
        g.Scope = "mask";
        string maskF = g.Node("Cast", [mask], attributes: ("to", (long)DataType.Float));
        string additive = g.Node("Unsqueeze", [g.Node("Mul", [g.Node("Sub", [g.Scalar(1f), maskF]), g.Scalar(float.MinValue)]), g.Int64s([1, 2], 2)]);
        int heads = c.NumAttentionHeads, headDim = c.HeadDim;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"bert.encoder.layer.{l}";
            g.Scope = $"layer.{l}.attention";
            string Heads(string t, long[] perm) =>
                g.Node("Transpose", [g.Node("Reshape", [t, g.Int64s([0, 0, heads, headDim], 4)])], attributes: ("perm", perm));
            string q = Heads(Linear(x, $"{p}.attention.self.query", spec.QuantizeInt8), [0, 2, 1, 3]);           // [B, N, L, D]
            string k = Heads(Linear(x, $"{p}.attention.self.key", spec.QuantizeInt8), [0, 2, 3, 1]);             // [B, N, D, L]
            string v = Heads(Linear(x, $"{p}.attention.self.value", spec.QuantizeInt8), [0, 2, 1, 3]);           // [B, N, L, D]
            string scores = g.Node("Div", [g.Node("MatMul", [q, k]), g.Scalar(MathF.Sqrt(headDim))]);            // [B, N, L, L]
            string probs = g.Node("Softmax", [g.Node("Add", [scores, additive])], attributes: ("axis", -1L));
            string context = g.Node("Reshape", [g.Node("Transpose", [g.Node("MatMul", [probs, v])], attributes: ("perm", new long[] { 0, 2, 1, 3 })),
                g.Int64s([0, 0, c.HiddenSize], 3)]);                                                              // [B, L, H]
            string a = LayerNorm(g.Node("Add", [Linear(context, $"{p}.attention.output.dense", spec.QuantizeInt8), x]), $"{p}.attention.output.LayerNorm");
            g.Scope = $"layer.{l}.ffn";
            string inner = Activation(Linear(a, $"{p}.intermediate.dense", spec.QuantizeInt8));
            x = LayerNorm(g.Node("Add", [Linear(inner, $"{p}.output.dense", spec.QuantizeInt8), a]), $"{p}.output.LayerNorm");
        }
        return x;
    }

    string Vector2D(string name)
    {
        var t = Param(name);
        return g.Floats(name, Values(t), t.shape[0], t.shape[1]);
    }

    string LayerNorm(string x, string module) =>
        g.Node("LayerNormalization", [x, Vector(module + ".weight"), Vector(module + ".bias")], attributes: [("axis", -1L), ("epsilon", c.LayerNormEps)]);

    string Activation(string x)
    {
        switch (c.HiddenAct)
        {
            case "gelu":   // 0.5·x·(1 + erf(x / √2))
                string erf = g.Node("Erf", [g.Node("Div", [x, g.Scalar(MathF.Sqrt(2f))])]);
                return g.Node("Mul", [g.Node("Mul", [x, g.Scalar(0.5f)]), g.Node("Add", [erf, g.Scalar(1f)])]);
            case "gelu_new" or "gelu_pytorch_tanh":   // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                string cube = g.Node("Mul", [g.Node("Mul", [x, x]), x]);
                string inner = g.Node("Mul", [g.Node("Add", [x, g.Node("Mul", [cube, g.Scalar(0.044715f)])]), g.Scalar(MathF.Sqrt(2f / MathF.PI))]);
                return g.Node("Mul", [g.Node("Mul", [x, g.Scalar(0.5f)]), g.Node("Add", [g.Node("Tanh", [inner]), g.Scalar(1f)])]);
            case "relu": return g.Node("Relu", [x]);
            case "tanh": return g.Node("Tanh", [x]);
            default: throw OnnxExport.Unsupported($"hidden_act '{c.HiddenAct}'", "gelu, gelu_new, gelu_pytorch_tanh, relu, tanh");
        }
    }

    // ---- the fused encoder: ONNX Runtime's com.microsoft operators ----

    string FusedEncoder(string ids, string mask, string types)
    {
        const string ms = OnnxGraph.MicrosoftDomain;
        g.Scope = "embeddings";
        string Int32(string t) => g.Node("Cast", [t], attributes: ("to", (long)DataType.Int32));
        string mask32 = Int32(mask);
        // Positions 0..L-1 (EmbedLayerNormalization's default), then LayerNorm.
        // Its shape inference wants the mask_index output declared, though the raw mask goes to Attention instead.
        string x = g.Nodes("EmbedLayerNormalization",
            [Int32(ids), Int32(types), Vector2D("bert.embeddings.word_embeddings.weight"), Vector2D("bert.embeddings.position_embeddings.weight"),
             Vector2D("bert.embeddings.token_type_embeddings.weight"), Vector("bert.embeddings.LayerNorm.weight"), Vector("bert.embeddings.LayerNorm.bias")],
            ["embeddings", "mask_index_unused"], ms, ("epsilon", c.LayerNormEps))[0];
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"bert.encoder.layer.{l}";
            g.Scope = $"layer.{l}.attention";
            var (qkv, qkvBias) = PackedQkv(p);
            // The raw [B, L] 0/1 mask: any padding pattern, not only right padding.
            string context = g.Node("Attention", [x, qkv, qkvBias, mask32], domain: ms, attributes: ("num_heads", (long)c.NumAttentionHeads));
            var (o, oBias) = Dense(context, $"{p}.attention.output.dense", spec.QuantizeInt8, withBias: false);
            string a = SkipLayerNorm(o, x, oBias, $"{p}.attention.output.LayerNorm");
            g.Scope = $"layer.{l}.ffn";
            var (i, iBias) = Dense(a, $"{p}.intermediate.dense", spec.QuantizeInt8, withBias: false);
            string inner = c.HiddenAct switch
            {
                "gelu" => g.Node("BiasGelu", [i, iBias], domain: ms),
                "gelu_new" or "gelu_pytorch_tanh" => g.Node("FastGelu", [i, iBias], domain: ms),
                _ => Activation(g.Node("Add", [i, iBias])),
            };
            var (f, fBias) = Dense(inner, $"{p}.output.dense", spec.QuantizeInt8, withBias: false);
            x = SkipLayerNorm(f, a, fBias, $"{p}.output.LayerNorm");
        }
        return x;
    }

    /// <summary>Query, key and value weights side by side, [H, 3H] (Attention's layout), and their biases, [3H].</summary>
    (string Weight, string Bias) PackedQkv(string layer)
    {
        var parts = new[] { "query", "key", "value" }.Select(n => Transposed($"{layer}.attention.self.{n}.weight")).ToArray();
        long h = parts[0].In, o = parts[0].Out;
        var w = new float[h * 3 * o];
        for (long r = 0; r < h; r++)
            for (int k = 0; k < 3; k++) Array.Copy(parts[k].Values, r * o, w, r * 3 * o + k * o, o);
        var bias = new[] { "query", "key", "value" }.SelectMany(n => Values(Param($"{layer}.attention.self.{n}.bias"))).ToArray();
        return (g.Floats($"{layer}.attention.self.qkv.weight", w, h, 3 * o), g.Floats($"{layer}.attention.self.qkv.bias", bias, 3 * o));
    }

    /// <summary>LayerNorm(x + bias + skip).</summary>
    string SkipLayerNorm(string x, string skip, string bias, string module) =>
        g.Node("SkipLayerNormalization", [x, skip, Vector(module + ".weight"), Vector(module + ".bias"), bias],
            domain: OnnxGraph.MicrosoftDomain, attributes: ("epsilon", c.LayerNormEps));

    // ---- heads ----

    /// <summary>tanh(dense(h[:, 0])): BertPooler.</summary>
    string Pooler(string hidden)
    {
        string cls = g.Node("Gather", [hidden, g.Int64s([0])], attributes: ("axis", 1L));                        // [B, H]
        return g.Node("Tanh", [Linear(cls, "bert.pooler.dense", spec.QuantizeInt8)]);
    }

    /// <summary>sentence-transformers' pooling over the real tokens (<see cref="SentencePooling"/>): the modes in the
    /// order cls, max, mean, mean-sqrt-len, concatenated.</summary>
    string Pool(string hidden, string mask)
    {
        g.Scope = "pooling";
        string mask3 = g.Node("Unsqueeze", [g.Node("Cast", [mask], attributes: ("to", (long)DataType.Float)), g.Int64s([-1], 1)]); // [B, L, 1]
        var parts = new List<string>();
        foreach (var mode in spec.Pooling.Distinct().Order())
        {
            switch (mode)
            {
                case PoolingMode.Cls:
                    parts.Add(g.Node("Gather", [hidden, g.Int64s([0])], attributes: ("axis", 1L)));
                    break;
                case PoolingMode.Max:
                    // Padding set to -1e9 so that it never wins, as sentence-transformers does.
                    string padded = g.Node("Where", [g.Node("Equal", [mask3, g.Scalar(0f)]), g.Scalar(-1e9f), hidden]);
                    parts.Add(g.Node("ReduceMax", [padded], attributes: [("axes", new long[] { 1 }), ("keepdims", 0L)]));
                    break;
                case PoolingMode.Mean:
                case PoolingMode.MeanSqrtLen:
                    string sum = g.Node("ReduceSum", [g.Node("Mul", [hidden, mask3]), g.Int64s([1], 1)], attributes: ("keepdims", 0L));    // [B, H]
                    string count = g.Node("Max", [g.Node("ReduceSum", [mask3, g.Int64s([1], 1)], attributes: ("keepdims", 0L)), g.Scalar(1e-9f)]); // [B, 1]
                    parts.Add(g.Node("Div", [sum, mode == PoolingMode.Mean ? count : g.Node("Sqrt", [count])]));
                    break;
            }
        }
        return parts.Count == 1 ? parts[0] : g.Node("Concat", parts.ToArray(), attributes: ("axis", 1L));
    }
}
