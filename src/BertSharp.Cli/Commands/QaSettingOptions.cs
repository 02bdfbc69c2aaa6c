using System.CommandLine;
using BertSharp.Tasks.QuestionAnswering;

namespace BertSharp.Cli.Commands;

/// <summary>The window and decoding options shared by `finetune qa`, `predict` and `evaluate` on QA models.</summary>
public sealed class QaSettingOptions
{
    /// <param name="maxSeqLength">an existing --max-seq-length option to share (predict/evaluate have one for every task)</param>
    public QaSettingOptions(Func<Option, Option>? register = null, Option<int?>? maxSeqLength = null)
    {
        MaxSeqLength = maxSeqLength ?? Add(new Option<int?>("--max-seq-length") { Description = "Tokens per window including [CLS]/[SEP] (default: min(384, the model's max positions); a fine-tuned folder's own value)" }, register);
        DocStride = Add(new Option<int?>("--doc-stride") { Description = "Tokens between the starts of consecutive windows of a long context; smaller than the context window (default: 128, or half the context window of a small model)" }, register);
        MaxQueryLength = Add(new Option<int?>("--max-query-length") { Description = "Questions are cut to this many tokens (default: 64, or a third of max-seq-length for a small model)" }, register);
        NBestSize = Add(new Option<int?>("--n-best-size") { Description = "Candidate starts/ends per window and n-best entries (default 20)" }, register);
        MaxAnswerLength = Add(new Option<int?>("--max-answer-length") { Description = "Longest answer in tokens (default 30)" }, register);
        NullScoreDiffThreshold = Add(new Option<double?>("--null-score-diff-threshold") { Description = "SQuAD 2.0: answer nothing when null score − best span score exceeds this (default 0)" }, register);
    }

    static Option<T> Add<T>(Option<T> option, Func<Option, Option>? register) { register?.Invoke(option); return option; }

    public Option<int?> MaxSeqLength { get; }
    public Option<int?> DocStride { get; }
    public Option<int?> MaxQueryLength { get; }
    public Option<int?> NBestSize { get; }
    public Option<int?> MaxAnswerLength { get; }
    public Option<double?> NullScoreDiffThreshold { get; }
    public IEnumerable<Option> All => [MaxSeqLength, DocStride, MaxQueryLength, NBestSize, MaxAnswerLength, NullScoreDiffThreshold];

    /// <summary>A QA model folder's settings with the options given on the command line applied (when the window
    /// length changes and the stride or query length were not given, they follow it).</summary>
    public QaSettings Apply(ParseResult r, string modelDir, int maxPositions) =>
        QaSettings.ForFolder(modelDir, maxPositions).Override(r.GetValue(MaxSeqLength), r.GetValue(DocStride), r.GetValue(MaxQueryLength),
            r.GetValue(NBestSize), r.GetValue(MaxAnswerLength), r.GetValue(NullScoreDiffThreshold));
}
