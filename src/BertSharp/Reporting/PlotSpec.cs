namespace BertSharp.Reporting;

/// <summary>
/// One figure in <c>plots/</c>: a line per series, each series a column of the logged rows against
/// <see cref="XColumn"/>. A column may be qualified by split ("train/loss", "eval/loss"); unqualified it
/// matches rows of either split that have it. Series without points are left out; a figure without any
/// point is not written.
/// </summary>
/// <param name="FileName">File name inside <c>plots/</c>, e.g. "loss.png".</param>
/// <param name="Title">Figure title.</param>
/// <param name="YLabel">Y axis label.</param>
/// <param name="Series">(column, legend label) per line.</param>
public sealed record PlotSpec(string FileName, string Title, string YLabel, params (string Column, string Label)[] Series)
{
    /// <summary>The x column: "step" (the default) or a logged value such as "epoch".</summary>
    public string XColumn { get; init; } = "step";

    /// <summary>X axis label; defaults to <see cref="XColumn"/>.</summary>
    public string? XLabel { get; init; }

    /// <summary>The three figures of the original project: total, MLM and NSP loss, train and validation.</summary>
    public static IReadOnlyList<PlotSpec> Pretraining { get; } =
    [
        new("loss.png", "Total loss (MLM + NSP)", "loss", ("train/loss", "train"), ("eval/val_loss", "validation")),
        new("mlm_loss.png", "Masked LM loss", "loss", ("train/mlm_loss", "train"), ("eval/val_mlm_loss", "validation")),
        new("nsp_loss.png", "Next sentence prediction loss", "loss", ("train/nsp_loss", "train"), ("eval/val_nsp_loss", "validation")),
    ];

    /// <summary>The figures of masked-LM pre-training alone: its loss, train and validation, and the validation accuracy.</summary>
    public static IReadOnlyList<PlotSpec> MaskedLm { get; } =
    [
        new("loss.png", "Masked LM loss", "loss", ("train/loss", "train"), ("eval/val_loss", "validation")),
        new("mlm_accuracy.png", "Masked LM accuracy", "accuracy", ("eval/val_mlm_accuracy", "validation")),
    ];

    /// <summary>
    /// Fine-tuning figures against <paramref name="xColumn"/> (default "epoch", which train rows must then carry
    /// too, e.g. as a fractional epoch): "loss.png" (train loss and val_loss) and one "&lt;metric&gt;.png" per
    /// evaluation metric (accuracy, f1, pearson, ...).
    /// </summary>
    public static IReadOnlyList<PlotSpec> FineTuning(IEnumerable<string> metrics, string xColumn = "epoch")
    {
        var specs = new List<PlotSpec>
        {
            new("loss.png", "Loss", "loss", ("train/loss", "train"), ("eval/val_loss", "validation")) { XColumn = xColumn },
        };
        foreach (string m in metrics)
            specs.Add(new PlotSpec($"{m}.png", $"Validation {m}", m, ($"eval/{m}", "validation")) { XColumn = xColumn });
        return specs;
    }
}
