using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The pre-training loss cut into shards run at once gives the loss and gradients of the whole batch.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class DataParallelTests
{
    // 7 sequences of 10 tokens; sequences 0 and 5 have no masked position, 3 has three, one label is ignored.
    static readonly long[] Positions = { 12, 15, 24, 31, 33, 38, 41, 46, 62, 67 };
    static readonly long[] Labels = { 60, 61, 62, 63, -100, 65, 66, 67, 68, 69 };

    /// <param name="maskedLmOnly">the MLM objective alone: Nsp is NaN, and parameters without a gradient are left out</param>
    static (float Total, float Mlm, float Nsp, Dictionary<string, Tensor> Grads) Run(BertForPreTraining model, int shards,
        double lossFactor = 1.0, bool maskedLmOnly = false)
    {
        TorchRuntime.Seed(7);
        using var scope = NewDisposeScope();
        var ids = randint(5, 1000, new long[] { 7, 10 });
        var types = zeros(7, 10, dtype: ScalarType.Int64);
        var mask = ones(7, 10, dtype: ScalarType.Int64);
        mask[6, TensorIndex.Slice(7)] = tensor(0L);   // one padded sequence
        var positions = tensor(Positions);
        var labels = tensor(Labels);
        var nsp = tensor(new long[] { 0, 1, 1, 0, 1, 0, 0 });
        model.zero_grad();
        DataParallel.ForcedShards = shards;
        try
        {
            var (total, mlm, nspLoss) = ShardedPretrainingLoss.Compute(model, ids, types, mask, positions, labels, maskedLmOnly ? null : nsp);
            total.mul(lossFactor).backward();   // a factor, as gradient accumulation applies, must reach the gradients
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.clone().MoveToOuterDisposeScope());
            return (total.item<float>(), mlm.item<float>(), nspLoss?.item<float>() ?? float.NaN, grads);
        }
        finally { DataParallel.ForcedShards = null; }
    }

    static BertForPreTraining Load(string precision = "fp32") => (BertForPreTraining)ModelFolder.Load(TestPaths.TinyBert, compute: ComputeOptions.ForPrecision(precision)).Model;

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]   // one sequence per shard, two of them with no masked position
    public void ShardedLossAndGradientsEqualTheWholeBatch(int shards)
    {
        using var model = Load();
        model.eval();   // no dropout: both see the same activations
        var (total, mlm, nsp, grads) = Run(model, 1, 0.5);
        var (sTotal, sMlm, sNsp, sGrads) = Run(model, shards, 0.5);
        Assert.Equal(mlm, sMlm, 1e-5);
        Assert.Equal(nsp, sNsp, 1e-5);
        Assert.Equal(total, sTotal, 1e-5);
        foreach (var (name, g) in grads)
        {
            double diff = (g - sGrads[name]).abs().max().item<float>(), scale = g.abs().max().item<float>();
            Assert.True(diff <= 1e-6 + 1e-5 * scale, $"{name}: max |diff| {diff} (max |grad| {scale})");
        }
        Assert.True(grads["bert.embeddings.word_embeddings.weight"].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void TheMaskedLmObjectiveAloneIsTheMlmPartShardedOrNotAndLeavesTheNextSentenceHeadUntrained()
    {
        using var model = Load();
        model.eval();
        var full = Run(model, 1);
        var whole = Run(model, 1, maskedLmOnly: true);
        var (total, mlm, nsp, grads) = Run(model, 3, maskedLmOnly: true);
        Assert.Equal(full.Mlm, whole.Mlm, 1e-5);
        Assert.Equal(whole.Mlm, mlm, 1e-5);
        Assert.Equal(mlm, total);
        Assert.True(float.IsNaN(nsp));
        Assert.DoesNotContain(grads.Keys, k => k.StartsWith("cls.seq_relationship.") || k.StartsWith("bert.pooler."));
        Assert.Equal(whole.Grads.Keys.Order(), grads.Keys.Order());
        foreach (var (name, g) in whole.Grads)
        {
            double diff = (g - grads[name]).abs().max().item<float>(), scale = g.abs().max().item<float>();
            Assert.True(diff <= 1e-6 + 1e-5 * scale, $"{name}: max |diff| {diff} (max |grad| {scale})");
        }
    }

    [Fact]
    public void ShardedBf16LossAndGradientsEqualTheWholeBatchToBf16Rounding()
    {
        using var model = Load("bf16");
        model.eval();
        {
            var (total, _, _, grads) = Run(model, 1);
            var (sTotal, _, _, sGrads) = Run(model, 3);
            Assert.Equal(total, sTotal, 1e-2);
            foreach (var (name, g) in grads)
            {
                double diff = (g - sGrads[name]).abs().max().item<float>(), scale = g.abs().max().item<float>();
                Assert.True(diff <= 1e-4 + 2e-2 * scale, $"{name}: max |diff| {diff} (max |grad| {scale})");
            }
        }
    }

    [Fact]
    public void WithDropoutAShardedStepIsReproducible()
    {
        using var model = Load();
        model.train();
        var first = Run(model, 2);
        var second = Run(model, 2);
        Assert.Equal(first.Total, second.Total);
        foreach (var (name, g) in first.Grads) Assert.True(g.eq(second.Grads[name]).all().item<bool>(), name);
        // The shards' masks are not the whole batch's: a different loss than unsharded with the same seed.
        Assert.NotEqual(first.Total, Run(model, 1).Total);
    }

    [Fact]
    public void AFailingShardFailsTheCall()
    {
        using var model = Load();
        using var ids = randint(5, 1000, new long[] { 4, 10 });
        using var zeros4 = zeros(4, 10, dtype: ScalarType.Int64);
        using var mask = ones(4, 10, dtype: ScalarType.Int64);
        using var positions = tensor(new long[] { 3, 35 });
        using var labels = tensor(new long[] { 1000000, 5 });   // out of the vocabulary: shard 0's loss throws
        using var nsp = tensor(new long[] { 0, 1, 0, 1 });
        DataParallel.ForcedShards = 2;
        try
        {
            Assert.ThrowsAny<Exception>(() => ShardedPretrainingLoss.Compute(model, ids, zeros4, mask, positions, labels, nsp));
            // Every worker is free again: a good batch goes through, both shards counted.
            model.eval();
            using var good = tensor(new long[] { 10, 5 });
            float sharded = ShardedPretrainingLoss.Compute(model, ids, zeros4, mask, positions, good, nsp).Total.item<float>();
            DataParallel.ForcedShards = 1;
            Assert.Equal(ShardedPretrainingLoss.Compute(model, ids, zeros4, mask, positions, good, nsp).Total.item<float>(), sharded, 1e-5);
        }
        finally { DataParallel.ForcedShards = null; }
    }
}
