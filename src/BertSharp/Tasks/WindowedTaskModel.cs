using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>A prediction of one text or pair that may have been longer than the model's window: in how many windows
/// it was read (1: it fit, or was cut) and how many of its tokens were cut.</summary>
public interface IWindowedPrediction
{
    int Windows { get; }
    int TruncatedTokens { get; }
}

/// <summary>
/// A task model with one output row per input (text or pair), read from [CLS]: classification and similarity. An
/// input longer than <see cref="TaskModel.MaxSeqLength"/> is read as <see cref="LongInputs"/> says: in overlapping
/// windows whose logits are combined (<see cref="TextWindows"/>) — in training too, where the loss is that of the
/// combined logits — or cut to the window.
/// </summary>
public abstract class WindowedTaskModel<TExample> : TaskModel<TExample>
{
    protected WindowedTaskModel(BertWithHead model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength)
    {
        longInputs = LongInputSettings.Of(model.Config);
    }

    private LongInputSettings longInputs;

    /// <summary>How inputs longer than the window are read: config.json's record (<see cref="LongInputSettings.ConfigKey"/>),
    /// else cut; setting it records it there, the stride as used with <see cref="TaskModel.MaxSeqLength"/>.</summary>
    public LongInputSettings LongInputs
    {
        get => longInputs;
        set
        {
            value.Validate(MaxSeqLength);
            longInputs = value;
            value.WriteTo(Config, MaxSeqLength);
        }
    }

    /// <summary>For a model reading windows of another length than it was fine-tuned with: a recorded stride gives way
    /// to the default of the new length (half its window), as question answering's does.</summary>
    internal void StrideFollowsLength()
    {
        if (LongInputs.DocStride is not null) LongInputs = LongInputs with { DocStride = null };
    }

    public override bool CutsLongInputs => LongInputs.Truncate;
    public override bool CombinesWindows => true;

    /// <summary>What one output row is, for notes: "logits", "scores".</summary>
    protected virtual string OutputName => "logits";

    /// <summary>The features of the inputs, each input's windows in turn: <paramref name="feature"/> makes the feature of
    /// a window of input i from its token ids and types.</summary>
    protected EncodedInputs EncodeInputs(int count, Func<int, (string Text, string? Pair)> input, Func<int, int[], int[], Feature> feature) =>
        TextWindows.Features(count, i => { var (text, pair) = input(i); return TextWindows.Encode(Tokenizer, text, pair, MaxSeqLength, LongInputs); }, feature);

    /// <summary>The logits of each input of a batch, [D, C]: those of its windows combined when the batch comes from
    /// <see cref="Batching.CollateInputs"/>, else the batch's own (one window per input).</summary>
    protected Tensor InputLogits(Batch batch)
    {
        var logits = Logits(batch);
        if (!batch.Tensors.TryGetValue(Batching.WindowsPerInput, out var counts)) return logits;
        using (logits) return TextWindows.Combine(logits, counts.data<long>().Select(c => (int)c).ToArray(), LongInputs.Aggregation);
    }

    /// <summary>The logits of each input, [D, C] on the CPU in input order: its windows' logits combined.</summary>
    protected Tensor InputLogits(EncodedInputs inputs)
    {
        var features = inputs.Features;
        int k = Config.NumLabels;
        var rows = new float[features.Count * k];
        // The forward pass reads no labels: Class batches build theirs from Feature.Label alone.
        Run(features, LabelKind.Class, (idx, logits) =>
        {
            var flat = logits.data<float>().ToArray();
            for (int j = 0; j < idx.Length; j++) Array.Copy(flat, j * k, rows, idx[j] * k, k);
        });
        using var windows = tensor(rows, [features.Count, k]);
        return TextWindows.Combine(windows, inputs.WindowsPerInput, LongInputs.Aggregation);
    }

    /// <summary>The settings, then what reading the training and dev examples took (<see cref="TaskModel{TExample}.TrainingInputs"/>
    /// of the last <see cref="TaskModel{TExample}.Encode"/>).</summary>
    public override IEnumerable<string> EncodingNotes(IReadOnlyList<TExample> train, IReadOnlyList<Feature> features, IReadOnlyList<TExample> dev)
    {
        yield return LongInputs.Describe(MaxSeqLength, OutputName);
        var parts = new List<string>();
        if (TrainingInputs is { } t) parts.Add(t.Describe("training", MaxSeqLength));
        parts.Add(EvaluationInputs(dev).Describe("dev", MaxSeqLength));
        yield return string.Join("; ", parts);
    }

    /// <summary>What reading <paramref name="examples"/> for evaluation takes.</summary>
    protected abstract InputCounts EvaluationInputs(IReadOnlyList<TExample> examples);

    /// <summary>The report's line on long inputs, when some were windowed or cut; else empty.</summary>
    protected string InputsLine(InputCounts counts) =>
        counts.Windowed + counts.Truncated > 0 ? counts.Describe("long inputs", MaxSeqLength) + "\n" : "";
}
