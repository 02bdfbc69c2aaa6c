using System.Text.RegularExpressions;

namespace BertSharp.Cli;

/// <summary>The library names its parameters (e.g. "batchSize"); the command line names them by their options
/// ("--batch-size"). An error message of the library is shown with the options in place of the parameters it names.</summary>
public static class ParameterFlags
{
    static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["train"] = "--train", ["dev"] = "--dev", ["test"] = "--test", ["output"] = "--output", ["resume"] = "--resume",
        ["model"] = "--model", ["randomInit"] = "--init random", ["modelPreset"] = "--model-preset", ["vocab"] = "--vocab",
        ["maxSeqLength"] = "--max-seq-length", ["batchSize"] = "--batch-size", ["evalBatchSize"] = "--eval-batch-size",
        ["learningRate"] = "--learning-rate", ["epochs"] = "--epochs", ["maxSteps"] = "--max-steps",
        ["gradientAccumulation"] = "--gradient-accumulation", ["warmupRatio"] = "--warmup-ratio", ["warmupSteps"] = "--warmup-steps",
        ["evalEvery"] = "--eval-every", ["metricForBestModel"] = "--metric-for-best-model", ["earlyStoppingPatience"] = "--early-stopping-patience", ["seed"] = "--seed", ["threads"] = "--threads", ["precision"] = "--precision", ["device"] = "--device",
        ["splitArticles"] = "--split-articles", ["docStride"] = "--doc-stride", ["maxQueryLength"] = "--max-query-length",
        ["nBestSize"] = "--n-best-size", ["maxAnswerLength"] = "--max-answer-length", ["nullScoreDiffThreshold"] = "--null-score-diff-threshold",
        ["version2WithNegative"] = "--version-2-with-negative", ["entityScheme"] = "--entity-scheme", ["topK"] = "--top-k",
        ["textColumn"] = "--text-column", ["pairColumn"] = "--pair-column", ["labelColumn"] = "--label-column", ["tagColumn"] = "--tag-column",
        ["maxPredictionsPerSeq"] = "--max-predictions-per-seq", ["corpus"] = "--corpus", ["objective"] = "--objective", ["cased"] = "--cased", ["vocabSize"] = "--vocab-size", ["validationCorpus"] = "--validation-corpus",
        ["multiLabel"] = "--multi-label", ["classWeights"] = "--class-weights", ["truncate"] = "--truncate", ["windowAggregation"] = "--window-aggregation",
        ["task"] = "--task", ["quantize"] = "--quantize", ["verify"] = "--verify", ["verifyData"] = "--verify-data",
    };

    /// <summary>The message of <paramref name="e"/> with each parameter it names replaced by its option, where it
    /// stands as a word of its own (not inside a path or a file name).</summary>
    public static string Message(BertSharpException e)
    {
        string message = e.Message;
        foreach (var p in e.Parameters)
            if (Flags.TryGetValue(p, out var flag))
                message = Regex.Replace(message, $@"(?<![\w/\\.-]){Regex.Escape(p)}(?![\w/\\-]|\.\w)", flag);
        return message;
    }
}
