using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>
/// How questions become windows and how window logits become answers. A QA model folder written by
/// <c>bert finetune qa</c> keeps the values it was trained with in <c>qa_config.json</c>, so prediction and
/// evaluation use them unless told otherwise.
/// </summary>
public sealed record QaSettings
{
    public const string FileName = "qa_config.json";

    /// <summary>Tokens per window, [CLS] and [SEP]s included (Google's default 384, at most the model's positions).</summary>
    public int MaxSeqLength { get; init; } = 384;
    /// <summary>Distance in tokens between the starts of consecutive windows of a long context (Google's
    /// run_squad.py meaning; the overlap is the window minus this). Must be smaller than the context window.</summary>
    public int DocStride { get; init; } = 128;
    /// <summary>Questions longer than this many tokens are cut to it.</summary>
    public int MaxQueryLength { get; init; } = 64;
    /// <summary>Candidate start and end tokens per window, and entries in the n-best list.</summary>
    public int NBestSize { get; init; } = 20;
    /// <summary>Longest answer considered, in tokens.</summary>
    public int MaxAnswerLength { get; init; } = 30;
    /// <summary>SQuAD 2.0: questions may have no answer; the null answer ([CLS]) competes with the best span.</summary>
    public bool Version2WithNegative { get; init; }
    /// <summary>SQuAD 2.0: answer "" when null score − best span score exceeds this.</summary>
    public double NullScoreDiffThreshold { get; init; }

    /// <summary>
    /// Defaults for a model with <paramref name="maxPositions"/> positions: Google's 384 / 128 / 64 where they fit;
    /// for a smaller model, max_seq_length = its positions, max_query_length = a third of that, and doc_stride = half
    /// of the context window that leaves (so consecutive windows overlap by half). For the 64-position `seed`
    /// preset: 64 / 20 / 21 (windows of 40 context tokens or more).
    /// </summary>
    public static QaSettings ForModel(int maxPositions, int? maxSeqLength = null, int? docStride = null, int? maxQueryLength = null)
    {
        int seq = maxSeqLength ?? Math.Min(384, maxPositions);
        int query = maxQueryLength ?? Math.Min(64, seq / 3);
        int stride = docStride ?? Math.Max(1, Math.Min(128, (seq - query - 3) / 2));
        return new QaSettings { MaxSeqLength = seq, MaxQueryLength = query, DocStride = stride };
    }

    /// <summary>A folder's settings (qa_config.json), else the defaults for the model's size.</summary>
    public static QaSettings ForFolder(string dir, int maxPositions) => Load(dir) ?? ForModel(maxPositions);

    /// <summary>These settings with the values given applied. When the window length changes and the stride or the
    /// query length are not given, they follow it (<see cref="ForModel"/>).</summary>
    public QaSettings Override(int? maxSeqLength = null, int? docStride = null, int? maxQueryLength = null,
        int? nBestSize = null, int? maxAnswerLength = null, double? nullScoreDiffThreshold = null)
    {
        var s = this;
        if (maxSeqLength is int seq && seq != s.MaxSeqLength)
        {
            var d = ForModel(seq, seq, docStride, maxQueryLength);
            s = s with { MaxSeqLength = seq, DocStride = d.DocStride, MaxQueryLength = d.MaxQueryLength };
        }
        return s with
        {
            DocStride = docStride ?? s.DocStride,
            MaxQueryLength = maxQueryLength ?? s.MaxQueryLength,
            NBestSize = nBestSize ?? s.NBestSize,
            MaxAnswerLength = maxAnswerLength ?? s.MaxAnswerLength,
            NullScoreDiffThreshold = nullScoreDiffThreshold ?? s.NullScoreDiffThreshold,
        };
    }

    public void Validate(int? maxPositions = null)
    {
        static BertSharpException Bad(string message, params string[] parameters) => new(message) { Parameters = parameters };
        if (maxPositions is int p && MaxSeqLength > p)
            throw Bad($"maxSeqLength {MaxSeqLength} exceeds the model's max_position_embeddings {p}", "maxSeqLength");
        if (MaxQueryLength < 1) throw Bad($"maxQueryLength must be at least 1, got {MaxQueryLength}", "maxQueryLength");
        int window = MaxSeqLength - MaxQueryLength - 3;
        if (window < 2)
            throw Bad($"maxSeqLength {MaxSeqLength} leaves no room for the context after a question of maxQueryLength {MaxQueryLength} tokens, [CLS] and two [SEP] (needs at least {MaxQueryLength + 5})", "maxSeqLength", "maxQueryLength");
        if (DocStride < 1 || DocStride >= window)
            throw Bad($"docStride {DocStride} must be at least 1 and smaller than the context window of {window} tokens (maxSeqLength {MaxSeqLength} − maxQueryLength {MaxQueryLength} − 3), or answers at window edges are lost", "docStride", "maxSeqLength", "maxQueryLength");
        if (NBestSize < 1) throw Bad($"nBestSize must be at least 1, got {NBestSize}", "nBestSize");
        if (MaxAnswerLength < 1) throw Bad($"maxAnswerLength must be at least 1, got {MaxAnswerLength}", "maxAnswerLength");
        if (!double.IsFinite(NullScoreDiffThreshold)) throw Bad($"nullScoreDiffThreshold must be a number, got {NullScoreDiffThreshold}", "nullScoreDiffThreshold");
    }

    public JsonObject ToJson() => new()
    {
        ["max_seq_length"] = MaxSeqLength,
        ["doc_stride"] = DocStride,
        ["max_query_length"] = MaxQueryLength,
        ["n_best_size"] = NBestSize,
        ["max_answer_length"] = MaxAnswerLength,
        ["version_2_with_negative"] = Version2WithNegative,
        ["null_score_diff_threshold"] = NullScoreDiffThreshold,
    };

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, FileName), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The settings saved in a model folder, or null when it has none.</summary>
    public static QaSettings? Load(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) return null;
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new BertSharpException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new BertSharpException($"{path}: invalid JSON: {e.Message.Split('\n')[0]}"); }
        int Int(string k, int d)
        {
            if (!o.TryGetPropertyValue(k, out var n) || n is null) return d;
            try { return n.GetValue<int>(); } catch (Exception) { throw new BertSharpException($"{path}: \"{k}\" must be an integer"); }
        }
        var def = new QaSettings();
        try
        {
            return new QaSettings
            {
                MaxSeqLength = Int("max_seq_length", def.MaxSeqLength),
                DocStride = Int("doc_stride", def.DocStride),
                MaxQueryLength = Int("max_query_length", def.MaxQueryLength),
                NBestSize = Int("n_best_size", def.NBestSize),
                MaxAnswerLength = Int("max_answer_length", def.MaxAnswerLength),
                Version2WithNegative = o["version_2_with_negative"]?.GetValue<bool>() ?? false,
                NullScoreDiffThreshold = o["null_score_diff_threshold"]?.GetValue<double>() ?? 0,
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new BertSharpException($"{path}: version_2_with_negative must be true/false and null_score_diff_threshold a number");
        }
    }
}
