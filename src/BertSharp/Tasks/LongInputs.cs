using System.Globalization;
using System.Text.Json.Nodes;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>How the windows of one input combine into its prediction: the mean or the maximum of their logits
/// (similarity: of their scores), label by label.</summary>
public enum WindowAggregation { Mean, Max }

/// <summary>
/// How a classifier or a similarity model reads an input longer than its max_seq_length: in overlapping windows whose
/// logits are combined into one prediction (<see cref="TextWindows"/>), or cut to the window (<see cref="Truncate"/>:
/// HF's longest_first truncation, what a folder without these settings does). Kept in config.json under
/// <see cref="ConfigKey"/>, so that prediction, evaluation and serving read inputs as fine-tuning did.
/// </summary>
public sealed record LongInputSettings
{
    /// <summary>config.json's record of the settings.</summary>
    public const string ConfigKey = "bertsharp_long_inputs";

    /// <summary>Cut long inputs to the window instead of reading them in windows.</summary>
    public bool Truncate { get; init; }
    /// <summary>Distance in tokens between the starts of consecutive windows (question answering's doc_stride); null:
    /// half the room of a window, so each token of a long text is read in two windows.</summary>
    public int? DocStride { get; init; }
    public WindowAggregation Aggregation { get; init; } = WindowAggregation.Mean;

    /// <summary>The settings of a folder that records none (fine-tuned before windows existed, or with transformers):
    /// its inputs are cut, as they were when it was fine-tuned.</summary>
    public static LongInputSettings Truncating { get; } = new() { Truncate = true };

    /// <summary>The stride of windows of <paramref name="maxSeqLength"/> tokens: <see cref="DocStride"/>, else half
    /// the tokens a window holds besides [CLS] and [SEP].</summary>
    public int StrideFor(int maxSeqLength) => DocStride ?? Math.Max(1, (maxSeqLength - 2) / 2);

    /// <summary>The settings a fine-tuning run asks for.</summary>
    public static LongInputSettings For(FineTuneOptions o)
    {
        if (o.Truncate && o.DocStride is not null)
            throw new BertSharpException("docStride goes with windows; truncate cuts long inputs instead") { Parameters = ["docStride", "truncate"] };
        if (o.Truncate && o.WindowAggregation != WindowAggregation.Mean)
            throw new BertSharpException("windowAggregation goes with windows; truncate cuts long inputs instead") { Parameters = ["windowAggregation", "truncate"] };
        return new LongInputSettings { Truncate = o.Truncate, DocStride = o.DocStride, Aggregation = o.WindowAggregation };
    }

    /// <summary>The options as a run used them (args.json): the stride of the windows, none when cutting.</summary>
    public FineTuneOptions Resolved(FineTuneOptions o, int maxSeqLength) => o with { DocStride = Truncate ? null : StrideFor(maxSeqLength) };

    public void Validate(int maxSeqLength)
    {
        if (DocStride is int s && (s < 1 || s > maxSeqLength - 2))
            throw new BertSharpException($"docStride {s} must be at least 1 and at most the {maxSeqLength - 2} tokens a window of maxSeqLength {maxSeqLength} holds besides [CLS] and [SEP], or tokens between windows are skipped") { Parameters = ["docStride", "maxSeqLength"] };
    }

    /// <summary>The settings a config records, or <see cref="Truncating"/> when it records none.</summary>
    public static LongInputSettings Of(BertConfig config, string source = "config.json")
    {
        if (config.Extra[ConfigKey] is not JsonObject o) return Truncating;
        string mode = Text(o, "mode", source) ?? "windows";
        if (mode == "truncate") return Truncating;
        if (mode != "windows") throw new BertSharpException($"{source}: {ConfigKey}.mode '{mode}': expected windows or truncate");
        int? stride = null;
        if (o["doc_stride"] is JsonValue v)
            stride = v.TryGetValue(out int s) ? s : throw new BertSharpException($"{source}: {ConfigKey}.doc_stride must be an integer");
        return new LongInputSettings { DocStride = stride, Aggregation = ParseAggregation(Text(o, "aggregation", source) ?? "mean", $"{source}: {ConfigKey}.aggregation") };
    }

    static string? Text(JsonObject o, string key, string source) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new BertSharpException($"{source}: {ConfigKey}.{key} must be a string"),
    };

    /// <summary>Records these settings in <paramref name="config"/> (the stride as used with <paramref name="maxSeqLength"/>).</summary>
    public void WriteTo(BertConfig config, int maxSeqLength) =>
        config.Extra[ConfigKey] = Truncate
            ? new JsonObject { ["mode"] = "truncate" }
            : new JsonObject { ["mode"] = "windows", ["doc_stride"] = StrideFor(maxSeqLength), ["aggregation"] = Name(Aggregation) };

    public static WindowAggregation ParseAggregation(string s, string what = "windowAggregation") => s.ToLowerInvariant() switch
    {
        "mean" => WindowAggregation.Mean,
        "max" => WindowAggregation.Max,
        _ => throw new BertSharpException($"{what} '{s}': choose mean or max") { Parameters = ["windowAggregation"] },
    };

    public static string Name(WindowAggregation a) => a == WindowAggregation.Max ? "max" : "mean";

    /// <summary>For notes: "long inputs: windows of max_seq_length 32, 15 tokens apart (doc_stride), predicting by the
    /// mean of their logits", or "long inputs: cut to max_seq_length 32 (truncate)".</summary>
    public string Describe(int maxSeqLength, string outputs = "logits") => Truncate
        ? $"long inputs: cut to max_seq_length {maxSeqLength} (truncate)"
        : $"long inputs: windows of max_seq_length {maxSeqLength}, {StrideFor(maxSeqLength)} tokens apart (doc_stride), predicting by the {Name(Aggregation)} of their {outputs}";
}

/// <summary>What reading a set of inputs took: how many were read in several windows (and in how many windows in all),
/// and how many were cut (and by how many tokens in all).</summary>
public sealed record InputCounts(int Examples, int Windowed, int Windows, int Truncated, long TruncatedTokens)
{
    public JsonObject ToJson() => new()
    {
        ["examples"] = Examples, ["windowed"] = Windowed, ["windows"] = Windows, ["truncated"] = Truncated, ["truncated_tokens"] = TruncatedTokens,
    };

    /// <summary>"dev: 12 of 200 examples read in 31 windows; 3 cut by 17 tokens in all"; "dev: all 200 examples fit".</summary>
    public string Describe(string what, int maxSeqLength)
    {
        var inv = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        if (Windowed > 0) parts.Add(string.Format(inv, "{0:N0} of {1:N0} examples longer than max_seq_length {2} read in {3:N0} windows", Windowed, Examples, maxSeqLength, Windows));
        if (Truncated > 0) parts.Add(string.Format(inv, "{0:N0} of {1:N0} examples cut, by {2:N0} tokens in all", Truncated, Examples, TruncatedTokens));
        return $"{what}: " + (parts.Count == 0 ? string.Format(inv, "all {0:N0} examples fit max_seq_length {1}", Examples, maxSeqLength) : string.Join("; ", parts));
    }
}

/// <summary>The model inputs of one text or pair: its windows ([CLS] … [SEP] token ids and types) and the tokens cut from it.</summary>
public sealed record WindowedInput(IReadOnlyList<(int[] InputIds, int[] TokenTypeIds)> Windows, int TruncatedTokens);

/// <summary>The features of many inputs (<see cref="TextWindows.Features"/>): each input's windows, consecutive, and
/// per input how many windows it has and how many tokens were cut from it.</summary>
public sealed record EncodedInputs(IReadOnlyList<Feature> Features, IReadOnlyList<int> WindowsPerInput, IReadOnlyList<int> TruncatedTokens)
{
    public InputCounts Counts => new(WindowsPerInput.Count,
        WindowsPerInput.Count(w => w > 1), WindowsPerInput.Where(w => w > 1).Sum(),
        TruncatedTokens.Count(t => t > 0), TruncatedTokens.Sum(t => (long)t));
}

/// <summary>
/// Splits a text (or pair) longer than the window into overlapping windows, as question answering splits a long
/// context: [CLS] tokens [start, start + room) [SEP] for start = 0, stride, 2·stride, … until the text's end is read,
/// the last window moved back to end at the text's end.
/// A pair slides over its longer text (the second on a tie) and repeats the other in each window: whole when it fits in
/// half the window, else cut to that half (counted in <see cref="WindowedInput.TruncatedTokens"/>). The windows' logits
/// are combined by <see cref="Combine"/>.
/// </summary>
public static class TextWindows
{
    /// <summary>The windows of <paramref name="text"/> (and <paramref name="pair"/>) under <paramref name="settings"/>:
    /// one window when it fits; cut (HF's longest_first) when <see cref="LongInputSettings.Truncate"/>.</summary>
    public static WindowedInput Encode(BertTokenizer tokenizer, string text, string? pair, int maxSeqLength, LongInputSettings settings)
    {
        var a = tokenizer.Encode(text);
        var b = pair is null ? null : tokenizer.Encode(pair);
        int specials = b is null ? 2 : 3;
        int length = a.Length + (b?.Length ?? 0) + specials;
        if (length <= maxSeqLength || settings.Truncate)
        {
            var enc = tokenizer.Build(a, b, maxSeqLength);
            return new WindowedInput([(enc.InputIds, enc.TokenTypeIds)], Math.Max(0, length - maxSeqLength));
        }
        int stride = settings.StrideFor(maxSeqLength);
        if (b is null) return new WindowedInput(Slide(tokenizer, a, null, slidesFirst: true, maxSeqLength - 2, stride), 0);
        bool slidesFirst = a.Length > b.Length;
        var (sliding, kept) = slidesFirst ? (a, b) : (b, a);
        int half = (maxSeqLength - 3) / 2;
        int cut = Math.Max(0, kept.Length - half);
        if (cut > 0) kept = kept[..half];
        return new WindowedInput(Slide(tokenizer, sliding, kept, slidesFirst, maxSeqLength - 3 - kept.Length, stride), cut);
    }

    /// <summary>Windows of <paramref name="room"/> tokens of <paramref name="sliding"/>, each with <paramref name="kept"/>
    /// in its place (second when <paramref name="slidesFirst"/>); a room smaller than the stride steps by the room, so
    /// that no token is skipped. The last window ends at the text's last token and is full: a window holding only the
    /// few tokens left over would weigh as much as the others in the combined logits while seeing little of the input
    /// (of a pair: a fragment of the text its score compares whole).</summary>
    static List<(int[], int[])> Slide(BertTokenizer tokenizer, int[] sliding, int[]? kept, bool slidesFirst, int room, int stride)
    {
        int step = Math.Min(stride, room);
        var windows = new List<(int[], int[])>();
        for (int start = 0; ; start += step)
        {
            start = Math.Max(0, Math.Min(start, sliding.Length - room));
            var part = sliding.AsSpan(start, Math.Min(room, sliding.Length - start)).ToArray();
            var enc = kept is null ? tokenizer.Build(part, null, int.MaxValue)
                : slidesFirst ? tokenizer.Build(part, kept, int.MaxValue) : tokenizer.Build(kept, part, int.MaxValue);
            windows.Add((enc.InputIds, enc.TokenTypeIds));
            if (start + room >= sliding.Length) break;
        }
        return windows;
    }

    /// <summary>The features of many inputs, in input order (an input's windows consecutive, <see cref="Feature.Example"/>
    /// its index); <paramref name="feature"/> makes the feature of a window of input i from its token ids and types.</summary>
    public static EncodedInputs Features(int count, Func<int, WindowedInput> encode, Func<int, int[], int[], Feature> feature)
    {
        var inputs = new WindowedInput[count];
        if (count == 1) inputs[0] = encode(0);   // no thread-pool hop for a single input
        else Parallel.For(0, count, i => inputs[i] = encode(i));
        var features = new List<Feature>(count);
        for (int i = 0; i < count; i++)
            foreach (var (ids, types) in inputs[i].Windows) features.Add(feature(i, ids, types));
        return new EncodedInputs(features, inputs.Select(x => x.Windows.Count).ToArray(), inputs.Select(x => x.TruncatedTokens).ToArray());
    }

    /// <summary>How many consecutive features each input has (features in input order, as <see cref="Features"/> makes them).</summary>
    public static int[] WindowsPerInput(IReadOnlyList<Feature> features)
    {
        var counts = new List<int>();
        for (int i = 0; i < features.Count; i++)
        {
            if (i == 0 || features[i].Example != features[i - 1].Example) counts.Add(0);
            counts[^1]++;
        }
        return counts.ToArray();
    }

    /// <summary>The outputs of each input from those of its windows: <paramref name="windows"/> [W, C] holds the rows
    /// of consecutive windows, <paramref name="windowsPerInput"/>[d] of them for input d; the result is [D, C], each row
    /// the mean or the maximum of its windows' rows (an input of one window: its row).</summary>
    public static Tensor Combine(Tensor windows, IReadOnlyList<int> windowsPerInput, WindowAggregation aggregation)
    {
        if (windowsPerInput.Count == windows.shape[0]) return windows.alias();
        var rows = new Tensor[windowsPerInput.Count];
        long start = 0;
        for (int d = 0; d < rows.Length; d++)
        {
            using var part = windows.narrow(0, start, windowsPerInput[d]);   // [k, C]
            rows[d] = aggregation == WindowAggregation.Max ? part.amax([0]) : part.mean([0]);
            start += windowsPerInput[d];
        }
        var result = stack(rows);   // [D, C]
        foreach (var r in rows) r.Dispose();
        return result;
    }
}
