using System.Text.Json;
using BertSharp.Reporting;

namespace BertSharp.Tests.Reporting;

public class RunLoggerTests
{
    static Dictionary<string, double> Train(double loss) => new()
    {
        ["loss"] = loss, ["mlm_loss"] = loss - 0.5, ["nsp_loss"] = 0.5, ["learning_rate"] = 1e-4, ["seq_per_s"] = 123.5,
    };

    static Dictionary<string, double> Eval(double loss) => new()
    {
        ["val_loss"] = loss, ["val_mlm_loss"] = loss - 0.25, ["val_nsp_loss"] = 0.25, ["val_mlm_accuracy"] = 0.5,
    };

    static RunLogger NewLogger(string dir, long? resume = null) =>
        new(dir, resume, plots: [], tensorBoard: false);

    static List<JsonElement> ReadJsonl(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void Jsonl_has_one_object_per_row_with_step_split_time_and_values()
    {
        using var tmp = new TempDir();
        using (var log = NewLogger(tmp.Path))
        {
            log.LogTrain(1, Train(3.0));
            log.LogTrain(2, Train(2.5));
            log.LogEval(2, Eval(2.75));
        }
        var rows = ReadJsonl(tmp["metrics.jsonl"]);
        Assert.Equal(3, rows.Count);
        Assert.Equal([1L, 2L, 2L], rows.Select(r => r.GetProperty("step").GetInt64()));
        Assert.Equal(["train", "train", "eval"], rows.Select(r => r.GetProperty("split").GetString()));
        Assert.Equal(["step", "split", "time", "loss", "mlm_loss", "nsp_loss", "learning_rate", "seq_per_s"],
            rows[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(2.5, rows[1].GetProperty("loss").GetDouble());
        Assert.Equal(1e-4, rows[1].GetProperty("learning_rate").GetDouble());
        Assert.Equal(2.5, rows[2].GetProperty("val_mlm_loss").GetDouble());
        Assert.False(rows[2].TryGetProperty("loss", out _));
        string time = rows[0].GetProperty("time").GetString()!;
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", time);
        Assert.True(Math.Abs((DateTimeOffset.Parse(time) - DateTimeOffset.UtcNow).TotalMinutes) < 5);
    }

    [Fact]
    public void Rows_are_on_disk_before_dispose()
    {
        using var tmp = new TempDir();
        using var log = NewLogger(tmp.Path);
        log.LogTrain(1, Train(3.0));
        // Open as another reader would while training runs (the logger shares read access).
        using var reader = new StreamReader(new FileStream(tmp["metrics.jsonl"], FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        Assert.Contains("\"step\":1", reader.ReadToEnd());
        using var csv = new StreamReader(new FileStream(tmp["metrics.csv"], FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
        Assert.Equal(2, csv.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Csv_header_is_the_union_of_columns_and_is_rewritten_when_a_column_appears()
    {
        using var tmp = new TempDir();
        using (var log = NewLogger(tmp.Path))
        {
            log.LogTrain(1, new Dictionary<string, double> { ["loss"] = 3, ["learning_rate"] = 0.5 });
            Assert.Equal("step,split,time,loss,learning_rate", File.ReadLines(tmp["metrics.csv"]).First());
            log.LogEval(1, new Dictionary<string, double> { ["val_loss"] = 2.5, ["val_f1"] = 0.25 });
            log.LogTrain(2, new Dictionary<string, double> { ["loss"] = 2, ["learning_rate"] = 0.25 });
            log.LogTrain(3, new Dictionary<string, double> { ["loss"] = 1.5, ["learning_rate"] = 0.125, ["grad_norm"] = 7 });
            Assert.Equal(["loss", "learning_rate", "val_loss", "val_f1", "grad_norm"], log.Columns);
        }
        var lines = File.ReadAllLines(tmp["metrics.csv"]);
        Assert.Equal("step,split,time,loss,learning_rate,val_loss,val_f1,grad_norm", lines[0]);
        Assert.Equal(5, lines.Length);
        string[][] cells = lines.Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.All(cells, c => Assert.Equal(8, c.Length));
        Assert.Equal(["1", "train", "3", "0.5", "", "", ""], cells[0].Where((_, i) => i != 2));
        Assert.Equal(["1", "eval", "", "", "2.5", "0.25", ""], cells[1].Where((_, i) => i != 2));
        Assert.Equal(["2", "train", "2", "0.25", "", "", ""], cells[2].Where((_, i) => i != 2));
        Assert.Equal(["3", "train", "1.5", "0.125", "", "", "7"], cells[3].Where((_, i) => i != 2));
        // The csv time is the jsonl time.
        var json = ReadJsonl(tmp["metrics.jsonl"]);
        Assert.Equal(json.Select(r => r.GetProperty("time").GetString()), cells.Select(c => c[2]));
        Assert.False(File.Exists(tmp["metrics.csv.tmp"]));
    }

    [Fact]
    public void Values_round_trip_exactly_and_non_finite_values_are_kept()
    {
        using var tmp = new TempDir();
        double third = 1.0 / 3;
        using (var log = NewLogger(tmp.Path))
            log.LogTrain(5, new Dictionary<string, double> { ["loss"] = double.NaN, ["a"] = third, ["b"] = double.PositiveInfinity, ["c"] = -1e-300 });
        var row = ReadJsonl(tmp["metrics.jsonl"]).Single();
        Assert.Equal("NaN", row.GetProperty("loss").GetString());
        Assert.Equal(third, row.GetProperty("a").GetDouble());
        Assert.Equal("Infinity", row.GetProperty("b").GetString());
        Assert.Equal(-1e-300, row.GetProperty("c").GetDouble());
        Assert.EndsWith(",NaN,0.3333333333333333,inf,-1E-300", File.ReadAllLines(tmp["metrics.csv"])[1]);

        // And they read back the same on resume.
        using var resumed = NewLogger(tmp.Path, resume: 5);
        var values = resumed.Rows.Single().Values;
        Assert.True(double.IsNaN(values["loss"]));
        Assert.Equal(third, values["a"]);
        Assert.Equal(double.PositiveInfinity, values["b"]);
    }

    [Fact]
    public void Reserved_names_are_rejected()
    {
        using var tmp = new TempDir();
        using var log = NewLogger(tmp.Path);
        Assert.Throws<ArgumentException>(() => log.LogTrain(1, new Dictionary<string, double> { ["step"] = 1 }));
        Assert.Throws<ArgumentException>(() => log.LogEval(1, new Dictionary<string, double> { ["time"] = 1 }));
        Assert.Empty(File.ReadAllText(tmp["metrics.jsonl"]));
    }

    [Fact]
    public void Resume_keeps_rows_up_to_the_checkpoint_step_and_appends()
    {
        using var tmp = new TempDir();
        using (var log = NewLogger(tmp.Path))
        {
            for (int step = 1; step <= 6; step++)
            {
                log.LogTrain(step, Train(10 - step));
                if (step % 2 == 0) log.LogEval(step, Eval(10 - step));
            }
        }
        // A crash while writing a row leaves half a line.
        File.AppendAllText(tmp["metrics.jsonl"], "{\"step\":7,\"split\":\"tra");
        string keptPrefix = string.Concat(File.ReadAllLines(tmp["metrics.jsonl"]).Take(6).Select(l => l + "\n"));

        // The checkpoint was at step 4: steps 5 and 6 (and the broken line) are redone by the resumed run.
        using (var log = NewLogger(tmp.Path, resume: 4))
        {
            Assert.Equal(4, log.ResumeStep);
            Assert.Equal(6, log.Rows.Count);
            Assert.Equal(["loss", "mlm_loss", "nsp_loss", "learning_rate", "seq_per_s", "val_loss", "val_mlm_loss", "val_nsp_loss", "val_mlm_accuracy"], log.Columns);
            log.LogTrain(5, Train(0.5));
            log.LogTrain(6, Train(0.25));
            log.LogEval(6, Eval(0.375));
        }
        string jsonl = File.ReadAllText(tmp["metrics.jsonl"]);
        Assert.StartsWith(keptPrefix, jsonl);   // kept rows are byte-identical
        var rows = ReadJsonl(tmp["metrics.jsonl"]);
        Assert.Equal(["1train", "2train", "2eval", "3train", "4train", "4eval", "5train", "6train", "6eval"],
            rows.Select(r => $"{r.GetProperty("step").GetInt64()}{r.GetProperty("split").GetString()}"));
        Assert.Equal(0.25, rows[7].GetProperty("loss").GetDouble());

        var csv = File.ReadAllLines(tmp["metrics.csv"]);
        Assert.Equal(10, csv.Length);
        Assert.Equal("step,split,time,loss,mlm_loss,nsp_loss,learning_rate,seq_per_s,val_loss,val_mlm_loss,val_nsp_loss,val_mlm_accuracy", csv[0]);
        Assert.Equal(["1", "2", "2", "3", "4", "4", "5", "6", "6"], csv.Skip(1).Select(l => l.Split(',')[0]));
        Assert.Equal("0.25", csv[8].Split(',')[3]);
    }

    [Fact]
    public void Resume_without_earlier_metrics_starts_them()
    {
        using var tmp = new TempDir();
        using (var log = NewLogger(tmp.Path, resume: 100))
            log.LogTrain(101, Train(1));
        Assert.Single(File.ReadAllLines(tmp["metrics.jsonl"]));
        Assert.Equal(2, File.ReadAllLines(tmp["metrics.csv"]).Length);
    }

    [Fact]
    public void A_new_run_in_a_used_folder_starts_afresh()
    {
        using var tmp = new TempDir();
        using (var log = new RunLogger(tmp.Path))
        {
            log.LogTrain(1, Train(3));
            log.LogEval(1, Eval(3));
        }
        Assert.NotEmpty(Directory.GetFiles(tmp.Path, "events.out.tfevents.*"));
        Assert.True(File.Exists(tmp["plots/loss.png"]));

        using (var log = new RunLogger(tmp.Path))
            log.LogTrain(1, new Dictionary<string, double> { ["x"] = 1 });
        Assert.Single(File.ReadAllLines(tmp["metrics.jsonl"]));
        Assert.Equal("step,split,time,x", File.ReadAllLines(tmp["metrics.csv"])[0]);
        Assert.Single(Directory.GetFiles(tmp.Path, "events.out.tfevents.*"));
        Assert.False(File.Exists(tmp["plots/loss.png"]));
    }

    [Fact]
    public void Logging_after_dispose_throws()
    {
        using var tmp = new TempDir();
        var log = NewLogger(tmp.Path);
        log.Dispose();
        log.Dispose();
        Assert.Throws<ObjectDisposedException>(() => log.LogTrain(1, Train(1)));
    }
}
