namespace BertSharp.Cli.Commands;

/// <summary>The --help of the best-model and early-stopping options every finetune subcommand shares.</summary>
public static class EarlyStoppingHelp
{
    public const string Metric =
        "Dev metric that picks the best model and that --early-stopping-patience watches: any the task's evaluation reports " +
        "(e.g. accuracy, macro_f1, pearson, spearman, f1, exact_match, mrr, loss; eval_ / val_ prefixes accepted); a loss is better " +
        "lower, the others higher (default: the task's own)";

    public const string Patience =
        "Stop after N evaluations in a row (each --eval-every steps, else each epoch) without a better --metric-for-best-model; " +
        "the run is then complete and keeps its best model (default: train to the end)";
}
