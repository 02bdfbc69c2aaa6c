using BertSharp.Training;

namespace BertSharp.Tests.Training;

public class ScheduleAndRandomTests
{
    [Fact]
    public void LinearWarmupThenLinearDecay()
    {
        var s = new LinearSchedule(1e-3, 10, 110);
        Assert.Equal(0, s.At(0));
        Assert.Equal(5e-4, s.At(5), 12);
        Assert.Equal(1e-3, s.At(10), 12);
        Assert.Equal(5e-4, s.At(60), 12);
        Assert.Equal(0, s.At(110));
    }

    [Fact]
    public void SplitMixIsDeterministicAndUniform()
    {
        var a = SplitMix.For(3, 1, 2);
        var b = SplitMix.For(3, 1, 2);
        var c = SplitMix.For(3, 2, 1);
        var xs = Enumerable.Range(0, 5).Select(_ => a.NextULong()).ToArray();
        Assert.Equal(xs, Enumerable.Range(0, 5).Select(_ => b.NextULong()));
        Assert.NotEqual(xs, Enumerable.Range(0, 5).Select(_ => c.NextULong()));
        var r = new SplitMix(1);
        var hist = new int[10];
        for (int i = 0; i < 100_000; i++) hist[r.Next(10)]++;
        Assert.All(hist, h => Assert.InRange(h, 9_500, 10_500));
        for (int i = 0; i < 1000; i++) Assert.InRange(r.NextInclusive(2, 4), 2, 4);
    }

    [Fact]
    public void WeightDecayExcludesBiasesAndLayerNorm()
    {
        Assert.True(Trainer.Decays("bert.encoder.layer.0.attention.self.query.weight"));
        Assert.False(Trainer.Decays("bert.encoder.layer.0.attention.self.query.bias"));
        Assert.False(Trainer.Decays("bert.embeddings.LayerNorm.weight"));
        Assert.False(Trainer.Decays("cls.predictions.bias"));
        Assert.True(Trainer.Decays("bert.embeddings.word_embeddings.weight"));
    }
}
