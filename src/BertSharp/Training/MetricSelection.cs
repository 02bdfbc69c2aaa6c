namespace BertSharp.Training;

/// <summary>
/// The evaluation metric that picks the best model (and that early stopping watches): its name among those the task's
/// evaluation reports, and its direction. As transformers' Trainer: greater is better, except for a loss (a name
/// ending in "loss"); perplexity, the exponential of a loss, is lower-better too.
/// </summary>
public static class MetricSelection
{
    public static bool HigherIsBetter(string metric) =>
        !(metric.EndsWith("loss", StringComparison.Ordinal) || metric == "perplexity");

    /// <summary>
    /// The metric <paramref name="requested"/> names (null: <paramref name="taskDefault"/>), checked against
    /// <paramref name="reported"/>, the names the task's evaluation reports. The prefix the logs give evaluation
    /// metrics ("val_", and transformers' "eval_") is accepted: "eval_loss" is "loss".
    /// </summary>
    public static string Resolve(string? requested, string taskDefault, IReadOnlyCollection<string> reported)
    {
        if (requested is null) return taskDefault;
        var name = requested.Trim();
        foreach (var prefix in new[] { "val_", "eval_" })
            if (name.StartsWith(prefix, StringComparison.Ordinal) && reported.Contains(name[prefix.Length..])) name = name[prefix.Length..];
        if (!reported.Contains(name))
            throw new BertSharpException($"metricForBestModel '{requested}': the evaluation reports {string.Join(", ", reported)}") { Parameters = ["metricForBestModel"] };
        return name;
    }
}
