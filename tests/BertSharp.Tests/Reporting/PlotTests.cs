using System.Buffers.Binary;
using BertSharp.Reporting;

namespace BertSharp.Tests.Reporting;

public class PlotTests
{
    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    static (int Width, int Height) AssertPng(string path)
    {
        Assert.True(File.Exists(path), $"{path} missing");
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 10_000, $"{path} is only {bytes.Length} bytes");
        Assert.Equal(PngSignature, bytes[..8]);
        Assert.Equal("IHDR"u8.ToArray(), bytes[12..16]);
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void Pretraining_run_draws_the_three_loss_figures_at_each_evaluation()
    {
        using var tmp = new TempDir();
        using (var log = new RunLogger(tmp.Path, tensorBoard: false))
        {
            var rng = new Random(0);
            for (int step = 1; step <= 400; step++)
            {
                double mlm = 9 * Math.Exp(-step / 150.0) + 1.5 + 0.3 * rng.NextDouble();
                double nsp = 0.7 * Math.Exp(-step / 200.0) + 0.05 * rng.NextDouble();
                log.LogTrain(step, new Dictionary<string, double>
                {
                    ["loss"] = mlm + nsp, ["mlm_loss"] = mlm, ["nsp_loss"] = nsp, ["learning_rate"] = 1e-4, ["seq_per_s"] = 100,
                });
                if (step % 50 == 0)
                {
                    double vm = 9 * Math.Exp(-step / 150.0) + 1.8, vn = 0.7 * Math.Exp(-step / 200.0) + 0.05;
                    log.LogEval(step, new Dictionary<string, double>
                    {
                        ["val_loss"] = vm + vn, ["val_mlm_loss"] = vm, ["val_nsp_loss"] = vn,
                        ["val_mlm_accuracy"] = 0.1 + step / 1000.0, ["val_perplexity"] = Math.Exp(vm), ["val_nsp_accuracy"] = 0.8,
                    });
                    if (step == 50)
                    {
                        foreach (string f in new[] { "loss.png", "mlm_loss.png", "nsp_loss.png" })
                            Assert.Equal((PlotRenderer.Width, PlotRenderer.Height), AssertPng(Path.Combine(log.PlotsDirectory, f)));
                    }
                }
            }
        }
        Assert.Equal(["loss.png", "mlm_loss.png", "nsp_loss.png"],
            Directory.GetFiles(tmp["plots"]).Select(Path.GetFileName).Order());   // no temporary files left
    }

    [Fact]
    public void Fine_tuning_specs_plot_against_epoch()
    {
        using var tmp = new TempDir();
        using (var log = new RunLogger(tmp.Path, plots: PlotSpec.FineTuning(["accuracy", "f1"]), tensorBoard: false))
        {
            for (int step = 1; step <= 30; step++)
            {
                log.LogTrain(step, new Dictionary<string, double> { ["loss"] = 1.0 / step, ["epoch"] = step / 10.0 });
                if (step % 10 == 0)
                    log.LogEval(step, new Dictionary<string, double> { ["epoch"] = step / 10, ["val_loss"] = 0.5, ["accuracy"] = 0.7 + step / 100.0, ["f1"] = 0.6 });
            }
        }
        Assert.Equal(["accuracy.png", "f1.png", "loss.png"], Directory.GetFiles(tmp["plots"]).Select(Path.GetFileName).Order());
        foreach (string f in Directory.GetFiles(tmp["plots"])) AssertPng(f);
    }

    [Fact]
    public void A_figure_without_data_is_not_written()
    {
        using var tmp = new TempDir();
        var spec = new PlotSpec("x.png", "X", "x", ("eval/nothing", "validation"));
        Assert.False(PlotRenderer.Render(spec, [new MetricRow(1, MetricRow.Train, DateTimeOffset.UtcNow, new Dictionary<string, double> { ["loss"] = 1 })], tmp["x.png"]));
        Assert.False(File.Exists(tmp["x.png"]));
    }

    [Fact]
    public void Split_qualified_columns_select_rows_of_that_split()
    {
        var train = new MetricRow(3, MetricRow.Train, DateTimeOffset.UtcNow, new Dictionary<string, double> { ["loss"] = 2 });
        var eval = new MetricRow(3, MetricRow.Eval, DateTimeOffset.UtcNow, new Dictionary<string, double> { ["loss"] = 5 });
        Assert.Equal(2, train.Get("loss"));
        Assert.Equal(2, train.Get("train/loss"));
        Assert.Null(train.Get("eval/loss"));
        Assert.Equal(5, eval.Get("eval/loss"));
        Assert.Equal(3, eval.Get("step"));
        Assert.Null(eval.Get("epoch"));
    }
}
