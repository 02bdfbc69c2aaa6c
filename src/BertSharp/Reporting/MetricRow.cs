namespace BertSharp.Reporting;

/// <summary>One logged row: a training step or an evaluation, with its named values.</summary>
/// <param name="Step">The optimizer step the values belong to.</param>
/// <param name="Split"><see cref="MetricRow.Train"/> or <see cref="MetricRow.Eval"/>.</param>
/// <param name="Time">When the row was logged (UTC).</param>
/// <param name="Values">Named values in the order they were given (loss, learning_rate, val_loss, epoch, ...).</param>
public sealed record MetricRow(long Step, string Split, DateTimeOffset Time, IReadOnlyDictionary<string, double> Values)
{
    public const string Train = "train";
    public const string Eval = "eval";

    /// <summary>The columns every row has, before its values; value names may not reuse them.</summary>
    public static IReadOnlyList<string> FixedColumns { get; } = ["step", "split", "time"];

    /// <summary>
    /// The value of <paramref name="column"/> in this row, or null. "step" is the row's step; a column written
    /// "train/name" or "eval/name" matches only rows of that split.
    /// </summary>
    public double? Get(string column)
    {
        int slash = column.IndexOf('/');
        if (slash > 0)
        {
            if (column.AsSpan(0, slash).SequenceEqual(Split)) column = column[(slash + 1)..];
            else return null;
        }
        if (column == "step") return Step;
        return Values.TryGetValue(column, out double v) ? v : null;
    }
}
