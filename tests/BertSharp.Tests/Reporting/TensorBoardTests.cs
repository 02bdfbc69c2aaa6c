using System.Text;
using BertSharp.Reporting;

namespace BertSharp.Tests.Reporting;

public class TensorBoardTests
{
    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        var check = Encoding.ASCII.GetBytes("123456789");
        Assert.Equal(0xE3069283u, TensorBoardWriter.Crc32C(check));
        Assert.Equal(0xE3069283u, TfEventsReader.Crc32C(check));
        var random = new byte[1000];
        new Random(1).NextBytes(random);
        for (int n = 0; n <= 20; n++)
            Assert.Equal(TfEventsReader.Crc32C(random.AsSpan(0, n)), TensorBoardWriter.Crc32C(random.AsSpan(0, n)));
        Assert.Equal(TfEventsReader.Crc32C(random), TensorBoardWriter.Crc32C(random));
    }

    [Fact]
    public void Run_logger_writes_train_and_eval_scalars_at_their_steps()
    {
        using var tmp = new TempDir();
        double before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 - 1;
        string file;
        using (var log = new RunLogger(tmp.Path, plots: []))
        {
            file = log.TensorBoardFile!;
            log.LogTrain(1, new Dictionary<string, double> { ["loss"] = 3.5, ["learning_rate"] = 1e-4 });
            log.LogTrain(2, new Dictionary<string, double> { ["loss"] = 3.25, ["learning_rate"] = 2e-4 });
            log.LogEval(2, new Dictionary<string, double> { ["val_loss"] = 3.375, ["val_mlm_accuracy"] = 0.125 });
            log.LogTrain(3_000_000_000, new Dictionary<string, double> { ["loss"] = -0.5 });
        }
        double after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 + 1;

        Assert.Equal(tmp.Path, Path.GetDirectoryName(file));
        Assert.Matches(@"^events\.out\.tfevents\.\d{10}\.", Path.GetFileName(file));
        var events = TfEventsReader.Read(file);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        Assert.Null(events[0].SessionLogStatus);
        var scalars = events.Skip(1).ToList();
        Assert.Equal(4, scalars.Count);
        Assert.All(events, e => Assert.InRange(e.WallTime, before, after));   // Unix seconds
        Assert.Equal([1L, 2L, 2L, 3_000_000_000L], scalars.Select(e => e.Step));
        Assert.Equal([("train/loss", 3.5f), ("train/learning_rate", 1e-4f)], scalars[0].Scalars);
        Assert.Equal([("train/loss", 3.25f), ("train/learning_rate", 2e-4f)], scalars[1].Scalars);
        Assert.Equal([("eval/val_loss", 3.375f), ("eval/val_mlm_accuracy", 0.125f)], scalars[2].Scalars);
        Assert.Equal([("train/loss", -0.5f)], scalars[3].Scalars);
    }

    [Fact]
    public void Events_are_readable_while_the_run_is_going()
    {
        using var tmp = new TempDir();
        using var writer = new TensorBoardWriter(tmp.Path);
        writer.AddScalar("train/loss", 1.5, 7);
        var events = TfEventsReader.Read(writer.FilePath);
        Assert.Equal(2, events.Count);
        Assert.Equal((7L, "train/loss", 1.5f), (events[1].Step, events[1].Scalars[0].Tag, events[1].Scalars[0].Value));
    }

    [Fact]
    public void A_resumed_run_writes_a_new_file_that_purges_the_steps_after_the_checkpoint()
    {
        using var tmp = new TempDir();
        using (var log = new RunLogger(tmp.Path, plots: []))
            for (int s = 1; s <= 5; s++) log.LogTrain(s, new Dictionary<string, double> { ["loss"] = s });
        string first = Directory.GetFiles(tmp.Path, "events.out.tfevents.*").Single();

        string second;
        using (var log = new RunLogger(tmp.Path, resumeStep: 3, plots: []))
        {
            second = log.TensorBoardFile!;
            log.LogTrain(4, new Dictionary<string, double> { ["loss"] = 40 });
        }
        Assert.NotEqual(first, second);
        Assert.Equal(6, TfEventsReader.Read(first).Count);   // the earlier file is left as it was
        var events = TfEventsReader.Read(second);
        Assert.Equal(3, events.Count);
        Assert.Equal(("brain.Event:2", 4L), (events[0].FileVersion, events[0].Step));
        Assert.Equal((1, 4L), (events[1].SessionLogStatus, events[1].Step));   // SessionLog START at step 4
        Assert.Equal((4L, ("train/loss", 40f)), (events[2].Step, events[2].Scalars.Single()));
    }

    [Fact]
    public void Tensorboard_can_be_turned_off()
    {
        using var tmp = new TempDir();
        using (var log = new RunLogger(tmp.Path, plots: [], tensorBoard: false))
        {
            Assert.Null(log.TensorBoardFile);
            log.LogTrain(1, new Dictionary<string, double> { ["loss"] = 1 });
        }
        Assert.Empty(Directory.GetFiles(tmp.Path, "events.out.tfevents.*"));
    }
}
