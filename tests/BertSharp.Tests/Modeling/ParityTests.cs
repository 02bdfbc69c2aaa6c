using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>Our forward pass against transformers' reference outputs for the tiny fixture model.</summary>
public class ParityTests
{
    const double Atol = 1e-5, Rtol = 1e-4;
    static readonly JsonElement Ref = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.TinyBert, "reference_outputs.json"))).RootElement;
    static readonly JsonElement HeadsRef = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.TinyBert, "reference_outputs_heads.json"))).RootElement;

    internal static float[] Flatten(JsonElement e)
    {
        var list = new List<float>();
        void Walk(JsonElement x)
        {
            if (x.ValueKind == JsonValueKind.Array) foreach (var c in x.EnumerateArray()) Walk(c);
            else list.Add(x.GetSingle());
        }
        Walk(e);
        return list.ToArray();
    }

    internal static Tensor Long2D(JsonElement e) =>
        tensor(e.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetInt64())).ToArray(),
            new long[] { e.GetArrayLength(), e[0].GetArrayLength() });

    static (Tensor ids, Tensor types, Tensor mask) Inputs(JsonElement root)
    {
        var inp = root.GetProperty("inputs");
        return (Long2D(inp.GetProperty("input_ids")), Long2D(inp.GetProperty("token_type_ids")), Long2D(inp.GetProperty("attention_mask")));
    }

    static void AssertClose(JsonElement expected, Tensor actual, string what)
    {
        var exp = Flatten(expected);
        var act = actual.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        Assert.True(exp.Length == act.Length, $"{what}: {act.Length} values, expected {exp.Length}");
        double worst = 0; int at = -1;
        for (int i = 0; i < exp.Length; i++)
        {
            double d = Math.Abs(exp[i] - act[i]);
            if (d > Atol + Rtol * Math.Abs(exp[i]) && d > worst) { worst = d; at = i; }
        }
        Assert.True(at < 0, $"{what}: |diff| {worst:g3} at flat index {at} (expected {(at >= 0 ? exp[at] : 0)}, got {(at >= 0 ? act[at] : 0)})");
    }

    static BertKernels KernelsNamed(string kernels) => kernels == "reference" ? BertKernels.Reference : BertKernels.Fused;

    public static IEnumerable<object[]> WeightFilesAndKernels =>
        from file in new[] { "model.safetensors", "pytorch_model.bin" } from kernels in new[] { "fused", "reference" } select new object[] { file, kernels };

    [Theory]
    [MemberData(nameof(WeightFilesAndKernels))]
    public void PreTrainingModelMatchesTransformers(string weightsFile, string kernels)
    {
        using var scope = NewDisposeScope();
        var (m, report) = ModelFolder.Load(TestPaths.TinyBert, weightsPath: Path.Combine(TestPaths.TinyBert, weightsFile),
            compute: new ComputeOptions { Kernels = KernelsNamed(kernels) });
        var model = Assert.IsType<BertForPreTraining>(m);
        Assert.Empty(report.NewlyInitialized);
        Assert.Empty(report.Unexpected);
        var (ids, types, mask) = Inputs(Ref);
        using var _ = no_grad();
        using var outp = model.Forward(ids, types, mask, outputHiddenStates: true, outputAttentions: true);
        var enc = outp.Encoder;

        AssertClose(Ref.GetProperty("embedding_output"), enc.HiddenStates![0], "embedding_output");
        for (int i = 0; i < 3; i++) AssertClose(Ref.GetProperty("hidden_states")[i], enc.HiddenStates[i], $"hidden_states[{i}]");
        for (int i = 0; i < 2; i++) AssertClose(Ref.GetProperty("attentions")[i], enc.Attentions![i], $"attentions[{i}]");
        AssertClose(Ref.GetProperty("last_hidden_state"), enc.LastHiddenState, "last_hidden_state");
        AssertClose(Ref.GetProperty("pooler_output"), enc.PoolerOutput!, "pooler_output");
        AssertClose(Ref.GetProperty("nsp_logits"), outp.NspLogits!, "nsp_logits");

        var mlm = Ref.GetProperty("mlm");
        for (int i = 0; i < mlm.GetProperty("positions").GetArrayLength(); i++)
        {
            var pos = mlm.GetProperty("positions")[i];
            int b = pos[0].GetInt32(), t = pos[1].GetInt32();
            var logits = outp.MlmLogits[b, t];
            AssertClose(mlm.GetProperty("logits")[i], logits, $"mlm.logits[{b},{t}]");
            var top5 = logits.topk(5).indexes.data<long>().ToArray();
            Assert.Equal(mlm.GetProperty("top5_ids")[i].EnumerateArray().Select(x => x.GetInt64()), top5);
        }

        // The fast path (fused attention, MLM logits only at chosen positions) gives the same logits.
        var flatPositions = tensor(Enumerable.Range(0, mlm.GetProperty("positions").GetArrayLength())
            .Select(i => { var p = mlm.GetProperty("positions")[i]; return (long)(p[0].GetInt32() * ids.shape[1] + p[1].GetInt32()); }).ToArray());
        using var fast = model.Forward(ids, types, mask, flatPositions);
        for (int i = 0; i < flatPositions.shape[0]; i++)
            AssertClose(mlm.GetProperty("logits")[i], fast.MlmLogits[i], $"fast mlm.logits[{i}]");
        AssertClose(Ref.GetProperty("nsp_logits"), fast.NspLogits!, "fast nsp_logits");

        var lc = Ref.GetProperty("loss_check");
        var (total, _, _) = BertForPreTraining.Loss(outp.MlmLogits, Long2D(lc.GetProperty("mlm_labels")), outp.NspLogits!,
            tensor(lc.GetProperty("next_sentence_label").EnumerateArray().Select(x => x.GetInt64()).ToArray()));
        Assert.Equal(lc.GetProperty("total_loss").GetDouble(), total.item<float>(), 1e-4);
    }

    [Theory]
    [InlineData("sequence-classification", typeof(BertForSequenceClassification), "fused")]
    [InlineData("token-classification", typeof(BertForTokenClassification), "fused")]
    [InlineData("question-answering", typeof(BertForQuestionAnswering), "fused")]
    [InlineData("sequence-classification", typeof(BertForSequenceClassification), "reference")]
    [InlineData("token-classification", typeof(BertForTokenClassification), "reference")]
    [InlineData("question-answering", typeof(BertForQuestionAnswering), "reference")]
    public void HeadModelsMatchTransformers(string head, Type type, string kernels)
    {
        using var scope = NewDisposeScope();
        var dir = Path.Combine(TestPaths.TinyBert, "heads", head);
        var (model, report) = ModelFolder.Load(dir, compute: new ComputeOptions { Kernels = KernelsNamed(kernels) });
        Assert.IsType(type, model);
        Assert.Empty(report.NewlyInitialized);
        Assert.Empty(report.Unexpected);
        var (ids, types, mask) = Inputs(HeadsRef);
        var expected = HeadsRef.GetProperty("heads").GetProperty(head);
        using var _ = no_grad();
        switch (model)
        {
            case BertForSequenceClassification s: AssertClose(expected.GetProperty("logits"), s.Forward(ids, types, mask), head); break;
            case BertForTokenClassification t: AssertClose(expected.GetProperty("logits"), t.Forward(ids, types, mask), head); break;
            case BertForQuestionAnswering q:
                var (start, end) = q.Forward(ids, types, mask);
                AssertClose(expected.GetProperty("start_logits"), start, "start_logits");
                AssertClose(expected.GetProperty("end_logits"), end, "end_logits");
                break;
        }
    }

    /// <summary>The two kernel sets train alike: with dropout off (their masks come from different generators), the
    /// pre-training loss and every gradient of one step agree, fused MLM loss included.</summary>
    [Fact]
    public void ReferenceAndFusedKernelsGiveTheSameTrainingLossAndGradients()
    {
        (float Loss, Dictionary<string, Tensor> Grads) Step(BertKernels kernels)
        {
            using var model = (BertForPreTraining)ModelFolder.Load(TestPaths.TinyBert, configure: c => { c.HiddenDropoutProb = 0; c.AttentionProbsDropoutProb = 0; },
                compute: new ComputeOptions { Kernels = kernels }).Model;
            model.train();
            using var scope = NewDisposeScope();
            var ids = tensor(Enumerable.Range(0, 48).Select(i => (long)(5 + i * 7 % 90)).ToArray(), new long[] { 4, 12 });
            var mask = ones(4, 12, dtype: ScalarType.Int64);
            mask[3, TensorIndex.Slice(8)] = tensor(0L);
            var (total, _, _) = model.PretrainingLoss(ids, zeros(4, 12, dtype: ScalarType.Int64), mask,
                tensor(new long[] { 2, 15, 27, 40 }), tensor(new long[] { 7, 8, 9, 10 }), tensor(new long[] { 0, 1, 1, 0 }));
            total.backward();
            return (total.item<float>(), model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().MoveToOuterDisposeScope()));
        }
        var reference = Step(BertKernels.Reference);
        var fused = Step(BertKernels.Fused);
        Assert.True(Math.Abs(reference.Loss - fused.Loss) <= 1e-5 * Math.Abs(reference.Loss), $"loss {reference.Loss} vs {fused.Loss}");
        double largest = reference.Grads.Values.Max(g => g.abs().max().item<float>());
        foreach (var (name, g) in reference.Grads)
        {
            double diff = (g - fused.Grads[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-5 * largest, $"{name}: max |diff| {diff} (largest gradient {largest})");
        }
    }

    [Fact]
    public void BaseCheckpointIntoClassifierReportsTheNewHead()
    {
        var (model, report) = ModelFolder.Load(TestPaths.TinyBert, "BertForSequenceClassification", c => c.Labels = new() { "a", "b", "c" });
        using var _ = model;
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }.OrderBy(x => x), report.NewlyInitialized.OrderBy(x => x));
        Assert.Contains("cls.seq_relationship.weight", report.Unexpected);
        Assert.Contains(report.Messages(), m => m.Contains("newly initialized") && m.Contains("classifier.weight"));
    }
}
