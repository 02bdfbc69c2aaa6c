using BertSharp.Training;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>
/// One model input of a fine-tuning task: token ids and types (unpadded, with [CLS]/[SEP]) and its label — a
/// class id, a score, or one label per token (-100 where the loss ignores the token) — and the example it
/// came from (a long tagged sentence gives several windows).
/// </summary>
public sealed class Feature
{
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    public int Example { get; init; }
    /// <summary>Class id; -1 when the example has no label the model knows (ignored by the loss).</summary>
    public long Label { get; init; } = -1;
    /// <summary>Multi-label classification: per label id, 1 when the example has the label, else 0.</summary>
    public float[]? Targets { get; init; }
    public float Score { get; init; }
    /// <summary>Per-token label ids, -100 for tokens the loss ignores (specials, continuation pieces).</summary>
    public int[]? TokenLabels { get; init; }
    /// <summary>Per token, the index (in the example) of the word it begins, -1 for every other token.</summary>
    public int[]? WordStarts { get; init; }
    /// <summary>Question answering: the sequence positions of the answer's first and last token ([CLS], 0, when the
    /// window does not hold the whole answer).</summary>
    public int StartPosition { get; init; }
    /// <summary>Sentence embeddings: the example's other texts (a positive, then a negative), each [CLS] … [SEP].</summary>
    public int[][]? Texts { get; init; }
    public int EndPosition { get; init; }
    public int Length => InputIds.Length;
}

/// <summary>Token sequences padded to one length, row-major [<see cref="Batch"/>, <see cref="Length"/>].</summary>
public sealed record PaddedArrays(long[] InputIds, long[] TokenTypeIds, long[] AttentionMask, int Batch, int Length);

/// <summary>What a batch's labels are: a class ("labels"), a set of classes (multi-hot "labels" [B, C], float), a
/// score ("labels"), a label per token ("labels"), an answer span ("start_positions" and "end_positions"), or the other texts of sentence-embedding examples
/// ("input_ids_K", "token_type_ids_K", "attention_mask_K" for the K-th other text of the features that have one,
/// and their scores as "labels").</summary>
public enum LabelKind { Class, MultiLabel, Score, Token, Span, Texts }

/// <summary>
/// Batching for fine-tuning: dynamic padding (each batch is padded to its own longest input) and length-grouped
/// training batches, in an order fixed by (seed, epoch) so that --resume replays it exactly.
/// </summary>
internal static class Batching
{
    /// <summary>Megabatch size in batches (HF's LengthGroupedSampler uses 50).</summary>
    public const int MegabatchFactor = 50;

    /// <summary>The random stream of the training order ("ORD").</summary>
    public const long OrderStream = 0x4F5244;

    /// <summary>0 … n−1 in the order of (seed, stream, epoch): the one shuffle of every training order.</summary>
    public static int[] Shuffled(int n, long seed, int epoch, long stream = OrderStream)
    {
        var order = Enumerable.Range(0, n).ToArray();
        var rng = SplitMix.For(seed, stream, epoch);
        rng.Shuffle(order);
        return order;
    }

    /// <summary>
    /// The training batches of one epoch, as feature indices: the features are shuffled, cut into megabatches of
    /// <see cref="MegabatchFactor"/> batches, each megabatch sorted by length (longest first) and cut into batches,
    /// and the batches shuffled. Similar lengths share a batch, so little padding is computed, while every epoch
    /// still sees a fresh order. There are ceil(N / batchSize) batches; only the last may be short.
    /// </summary>
    public static int[][] TrainOrder(IReadOnlyList<int> lengths, int batchSize, long seed, int epoch, bool groupByLength = true, long stream = OrderStream)
    {
        int n = lengths.Count;
        var order = Shuffled(n, seed, epoch, stream);
        var batches = new List<int[]>((n + batchSize - 1) / batchSize);
        if (!groupByLength)
        {
            for (int i = 0; i < n; i += batchSize) batches.Add(order[i..Math.Min(n, i + batchSize)]);
            return batches.ToArray();
        }
        int mega = batchSize * MegabatchFactor;
        for (int m = 0; m < n; m += mega)
        {
            var chunk = order[m..Math.Min(n, m + mega)];
            var sorted = chunk.Select((f, pos) => (f, pos)).OrderByDescending(x => lengths[x.f]).ThenBy(x => x.pos).Select(x => x.f).ToArray();
            for (int i = 0; i < sorted.Length; i += batchSize) batches.Add(sorted[i..Math.Min(sorted.Length, i + batchSize)]);
        }
        var shuffle = SplitMix.For(seed, 0x424154 /* "BAT" */, epoch);
        var result = batches.ToArray();
        shuffle.Shuffle(result);
        return result;
    }

    /// <summary>Evaluation batches: features sorted by length (the padding is then minimal); results are put back
    /// in feature order by the caller.</summary>
    public static int[][] EvalOrder(IReadOnlyList<int> lengths, int batchSize)
    {
        var sorted = Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).ThenBy(i => i).ToArray();
        var batches = new List<int[]>();
        for (int i = 0; i < sorted.Length; i += batchSize) batches.Add(sorted[i..Math.Min(sorted.Length, i + batchSize)]);
        return batches.ToArray();
    }

    /// <summary>Sequences padded to the longest of them, row-major [B, L]: input_ids (the pad id after each sequence),
    /// token_type_ids (all 0 when <paramref name="tokenTypeIds"/> is null) and attention_mask.</summary>
    public static PaddedArrays Pad(IReadOnlyList<int[]> inputIds, IReadOnlyList<int[]>? tokenTypeIds, int padId)
    {
        int B = inputIds.Count, L = inputIds.Max(s => s.Length);
        var ids = new long[B * L];
        var types = new long[B * L];
        var mask = new long[B * L];
        if (padId != 0) Array.Fill(ids, padId);
        for (int b = 0; b < B; b++)
        {
            var seq = inputIds[b];
            var seqTypes = tokenTypeIds?[b];
            for (int t = 0; t < seq.Length; t++)
            {
                ids[b * L + t] = seq[t];
                if (seqTypes != null) types[b * L + t] = seqTypes[t];
                mask[b * L + t] = 1;
            }
        }
        return new PaddedArrays(ids, types, mask, B, L);
    }

    /// <summary>The encoder inputs of a batch padded to its longest sequence (<see cref="Pad"/>): input_ids,
    /// token_type_ids and attention_mask, each [B, L] on <paramref name="device"/> (default: the CPU).</summary>
    public static Dictionary<string, Tensor> PaddedInputs(IReadOnlyList<int[]> inputIds, IReadOnlyList<int[]>? tokenTypeIds, int padId, out int length, Device? device = null)
    {
        var p = Pad(inputIds, tokenTypeIds, padId);
        length = p.Length;
        long[] shape = [p.Batch, p.Length];
        device ??= CPU;
        return new Dictionary<string, Tensor>
        {
            ["input_ids"] = tensor(p.InputIds, shape, device: device),
            ["token_type_ids"] = tensor(p.TokenTypeIds, shape, device: device),
            ["attention_mask"] = tensor(p.AttentionMask, shape, device: device),
        };
    }

    /// <summary>Pads the features to the longest of them: input_ids (pad id), token_type_ids, attention_mask, and
    /// the labels of the given kind (token labels padded with -100), on <paramref name="device"/> (default: the CPU).</summary>
    public static Batch Collate(IReadOnlyList<Feature> items, int padId, LabelKind kind, int epoch = 0, int index = 0, Device? device = null)
    {
        device ??= CPU;
        var tensors = PaddedInputs(items.Select(f => f.InputIds).ToList(), items.Select(f => f.TokenTypeIds).ToList(), padId, out int L, device);
        AddLabels(tensors, items, kind, L, padId, device);
        return new Batch { Sequences = items.Count, Epoch = epoch, Index = index, Tensors = tensors };
    }

    /// <summary>The key of <see cref="CollateInputs"/>' windows per input ([D], int64, on the CPU).</summary>
    public const string WindowsPerInput = "windows_per_input";

    /// <summary>Pads the windows of several inputs (each input's windows consecutive, <see cref="TextWindows"/>) as
    /// <see cref="Collate"/> does, with one label per input, taken from its first window ("labels", [D] or [D, C]), and
    /// the number of windows of each input (<see cref="WindowsPerInput"/>, [D]): a loss on the inputs' combined
    /// logits. Labels of a class, a set of classes or a score.</summary>
    public static Batch CollateInputs(IReadOnlyList<IReadOnlyList<Feature>> inputs, int padId, LabelKind kind, int epoch = 0, int index = 0, Device? device = null)
    {
        if (kind is not (LabelKind.Class or LabelKind.MultiLabel or LabelKind.Score))
            throw new ArgumentException($"labels of kind {kind} belong to windows, not to inputs", nameof(kind));
        device ??= CPU;
        var windows = inputs.SelectMany(w => w).ToList();
        var tensors = PaddedInputs(windows.Select(f => f.InputIds).ToList(), windows.Select(f => f.TokenTypeIds).ToList(), padId, out int L, device);
        AddLabels(tensors, inputs.Select(w => w[0]).ToList(), kind, L, padId, device);
        tensors[WindowsPerInput] = tensor(inputs.Select(w => (long)w.Count).ToArray());
        return new Batch { Sequences = windows.Count, Epoch = epoch, Index = index, Tensors = tensors };
    }

    static void AddLabels(Dictionary<string, Tensor> tensors, IReadOnlyList<Feature> items, LabelKind kind, int L, int padId, Device device)
    {
        int B = items.Count;
        switch (kind)
        {
            case LabelKind.Class:
                tensors["labels"] = tensor(items.Select(f => f.Label < 0 ? -100L : f.Label).ToArray(), device: device);
                break;
            case LabelKind.MultiLabel:
                tensors["labels"] = tensor(items.SelectMany(f => f.Targets!).ToArray(), [B, items[0].Targets!.Length], device: device);
                break;
            case LabelKind.Score:
                tensors["labels"] = tensor(items.Select(f => f.Score).ToArray(), device: device);
                break;
            case LabelKind.Token:
                var labels = new long[B * L];
                Array.Fill(labels, -100L);
                for (int b = 0; b < B; b++)
                {
                    var tl = items[b].TokenLabels!;
                    for (int t = 0; t < tl.Length; t++) labels[b * L + t] = tl[t];
                }
                tensors["labels"] = tensor(labels, new long[] { B, L }, device: device);
                break;
            case LabelKind.Span:
                tensors["start_positions"] = tensor(items.Select(f => (long)f.StartPosition).ToArray(), device: device);
                tensors["end_positions"] = tensor(items.Select(f => (long)f.EndPosition).ToArray(), device: device);
                break;
            case LabelKind.Texts:
                tensors["labels"] = tensor(items.Select(f => f.Score).ToArray(), device: device);
                for (int k = 1; items.Any(f => f.Texts?.Length >= k); k++)
                {
                    var column = items.Where(f => f.Texts?.Length >= k).Select(f => f.Texts![k - 1]).ToList();
                    var padded = PaddedInputs(column, null, padId, out _, device);
                    foreach (var (name, t) in padded) tensors[$"{name}_{k}"] = t;
                }
                break;
        }
    }
}
