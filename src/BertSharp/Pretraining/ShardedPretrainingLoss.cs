using BertSharp.Modeling;
using BertSharp.Runtime;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Pretraining;

/// <summary>
/// The pre-training loss of a training batch as the trainer's step computes it: on a CPU with several libtorch threads
/// the batch is cut into shards of whole sequences run at once (<see cref="DataParallel"/>), each shard's sums divided
/// by the whole batch's counts, so the loss and gradients are those of <see cref="BertForPreTraining.PretrainingLoss"/>
/// on the whole batch.
/// </summary>
internal static class ShardedPretrainingLoss
{
    const long IgnoreIndex = -100;

    /// <param name="maskedPositions">[P] flat indices into B·L</param>
    /// <param name="mlmLabels">[P] int64</param>
    /// <param name="nspLabels">[B] int64; null: the masked-LM objective alone (<see cref="BertForPreTraining.MaskedLmLoss"/>;
    /// the total is then the MLM loss and the NSP part null)</param>
    /// <param name="shard">false: always the whole batch at once (bench/StepProfile's before/after)</param>
    public static (Tensor Total, Tensor Mlm, Tensor? Nsp) Compute(BertForPreTraining model, Tensor inputIds, Tensor tokenTypeIds,
        Tensor attentionMask, Tensor maskedPositions, Tensor mlmLabels, Tensor? nspLabels, bool shard = true)
    {
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        int shards = shard ? DataParallel.Shards(batch, inputIds.device, model.Compute.Kernels) : 1;
        long mlmCount = shards == 1 ? 0 : mlmLabels.With(IgnoreIndex, (t, s) => t.ne(s)).sum().item<long>();
        long nspCount = shards == 1 ? 0 : nspLabels is null ? 1 : nspLabels.With(IgnoreIndex, (t, s) => t.ne(s)).sum().item<long>();
        if (mlmCount == 0 || nspCount == 0)   // one shard, or nothing to average over (NaN, as the unsharded loss)
        {
            if (nspLabels is null)
            {
                var alone = model.MaskedLmLoss(inputIds, tokenTypeIds, attentionMask, maskedPositions, mlmLabels);
                return (alone, alone, null);
            }
            return model.PretrainingLoss(inputIds, tokenTypeIds, attentionMask, maskedPositions, mlmLabels, nspLabels);
        }

        using var sequenceOf = maskedPositions.With(length, (t, s) => t.div(s, rounding_mode: RoundingMode.floor));   // [P]
        var parameters = model.parameters().Where(p => p.requires_grad).ToList<Tensor>();
        var sums = DataParallel.Run(parameters, shards, k =>
        {
            var (b0, b1) = DataParallel.Range(batch, shards, k);
            var mine = sequenceOf.With(b0, (t, s) => t.ge(s)).logical_and_(sequenceOf.With(b1, (t, s) => t.lt(s))).nonzero().squeeze(1);
            var (ids, types, mask) = (inputIds.narrow(0, b0, b1 - b0), tokenTypeIds.narrow(0, b0, b1 - b0), attentionMask.narrow(0, b0, b1 - b0));
            var (positions, labels) = (maskedPositions.index_select(0, mine).With(b0 * length, (t, s) => t.sub_(s)), mlmLabels.index_select(0, mine));
            if (nspLabels is null) return new[] { model.MaskedLmLoss(ids, types, mask, positions, labels, mlmCount) };
            var (total, mlm, nsp) = model.PretrainingLoss(ids, types, mask, positions, labels, nspLabels.narrow(0, b0, b1 - b0), mlmCount, nspCount);
            return new[] { total, mlm, nsp };
        });
        return nspLabels is null ? (sums[0], sums[0], null) : (sums[0], sums[1], sums[2]);
    }
}
