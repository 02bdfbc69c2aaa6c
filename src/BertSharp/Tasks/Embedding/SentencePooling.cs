using BertSharp.Runtime;
using static TorchSharp.torch;

namespace BertSharp.Tasks.Embedding;

/// <summary>sentence-transformers' Pooling: token vectors [B, L, H] and the attention mask [B, L] → one vector per
/// input, [B, H × modes], in float32; modes concatenate in the order cls, max, mean, mean-sqrt-len.</summary>
public static class SentencePooling
{
    public static Tensor Pool(Tensor tokenEmbeddings, Tensor attentionMask, IReadOnlyList<PoolingMode> modes)
    {
        using var scope = NewDisposeScope();
        var x = tokenEmbeddings.to(ScalarType.Float32);                                     // [B, L, H]
        var mask = attentionMask.unsqueeze(-1).to(ScalarType.Float32);                      // [B, L, 1]
        var parts = new List<Tensor>();
        foreach (var mode in modes.Distinct().Order())
        {
            switch (mode)
            {
                case PoolingMode.Cls:
                    parts.Add(x.select(1, 0));                                                  // [B, H]
                    break;
                case PoolingMode.Max:
                    // Padding set to -1e9 so that it never wins, as sentence-transformers does.
                    parts.Add(x.With(-1e9, (t, fill) => t.masked_fill(mask.With(0L, (m, zero) => m.eq(zero)), fill)).amax([1]));   // [B, H]
                    break;
                case PoolingMode.Mean:
                case PoolingMode.MeanSqrtLen:
                    var sum = (x * mask).sum(1);                                                // [B, H]
                    var count = mask.sum(1).With(1e-9, (t, least) => t.clamp_min(least));   // [B, 1]
                    parts.Add(mode == PoolingMode.Mean ? sum / count : sum / count.sqrt());
                    break;
            }
        }
        var pooled = parts.Count == 1 ? parts[0] : cat(parts, 1);
        return pooled.MoveToOuterDisposeScope();
    }
}
