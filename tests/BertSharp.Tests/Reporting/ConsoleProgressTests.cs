using BertSharp.Reporting;

namespace BertSharp.Tests.Reporting;

public class ConsoleProgressTests
{
    sealed class FakeClock
    {
        public TimeSpan Now;
        public TimeSpan Read() => Now;
    }

    [Fact]
    public void Redirected_output_gets_a_plain_line_every_interval()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(1000, 0, "pretrain", output, interactive: false, TimeSpan.FromSeconds(30), clock.Read))
        {
            Assert.False(progress.Interactive);
            for (int step = 1; step <= 1000; step++)
            {
                clock.Now = TimeSpan.FromSeconds(step * 0.1);   // 10 steps per second
                progress.Update(step, loss: 10.0 / step, sequencesPerSecond: 320);
            }
        }
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain('\r', output.ToString());
        // At t = 0.1 s (first update), then every 30 s (t = 30.1, 60.1, 90.1), then the final step 1000 at t = 100 s.
        Assert.Equal(5, lines.Length);
        Assert.Equal("pretrain step 1/1000 (0.1%) | loss 10.0000 | 320.0 seq/s | elapsed 0:00:00 | eta 0:01:39", lines[0]);
        Assert.Equal("pretrain step 301/1000 (30.1%) | loss 0.0332 | 320.0 seq/s | elapsed 0:00:30 | eta 0:01:09", lines[1]);
        Assert.StartsWith("pretrain step 601/1000", lines[2]);
        Assert.StartsWith("pretrain step 901/1000", lines[3]);
        Assert.Equal("pretrain step 1000/1000 (100.0%) | loss 0.0100 | 320.0 seq/s | elapsed 0:01:40", lines[4]);
    }

    [Fact]
    public void Resumed_run_counts_the_eta_from_the_steps_done_since_the_start()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(10_000, 5_000, null, output, interactive: false, TimeSpan.FromHours(1), clock.Read))
        {
            clock.Now = TimeSpan.FromSeconds(10);
            progress.Update(5_100);   // 100 steps in 10 s; 4900 left -> 490 s
        }
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("step 5100/10000 (51.0%) | elapsed 0:00:10 | eta 0:08:10", lines.Single());
    }

    [Fact]
    public void Restart_after_loading_a_checkpoint_counts_time_and_eta_from_there()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(2_500, 0, null, output, interactive: false, TimeSpan.FromHours(1), clock.Read))
        {
            clock.Now = TimeSpan.FromSeconds(20);   // reading data and the checkpoint
            progress.Restart(1_750);
            clock.Now = TimeSpan.FromSeconds(30);
            progress.Update(1_800);   // 50 steps in 10 s; 700 left -> 140 s
        }
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("step 1800/2500 (72.0%) | elapsed 0:00:10 | eta 0:02:20", lines.Single());
    }

    [Fact]
    public void Messages_and_the_final_line_are_written()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(100, 0, null, output, interactive: false, TimeSpan.FromSeconds(30), clock.Read))
        {
            progress.Update(1, 2.0);
            progress.WriteLine("eval step 1: val_loss 1.5");
            clock.Now = TimeSpan.FromSeconds(5);
            progress.Update(2, 1.0);
        }
        Assert.Equal(
            ["step 1/100 (1.0%) | loss 2.0000 | elapsed 0:00:00 | eta ?", "eval step 1: val_loss 1.5", "step 2/100 (2.0%) | loss 1.0000 | elapsed 0:00:05 | eta 0:04:05"],
            output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Terminal_mode_redraws_in_place_at_most_four_times_a_second()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(1000, 0, "train", output, interactive: true, null, clock.Read) { TerminalColumns = 100 })
        {
            for (int step = 1; step <= 1000; step++)
            {
                clock.Now = TimeSpan.FromMilliseconds(step);   // 1000 steps in one second
                progress.Update(step, 1.0, 1000);
            }
        }
        string text = output.ToString();
        int redraws = text.Count(c => c == '\r');
        Assert.InRange(redraws, 4, 6);   // t = 1 ms, 251, 501, 751 ms, and the final draw
        Assert.EndsWith("\n", text);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        string last = text.Split('\r')[^1].TrimEnd();
        Assert.Matches(@"^train \[=+\] 1000/1000 100\.0% \| loss 1\.0000 \| 1000\.0 seq/s \| 0:00:01$", last);
        Assert.InRange(last.Length, 90, 99);   // the bar takes the room the terminal leaves (less the last column)
    }

    [Fact]
    public void Terminal_mode_fits_the_line_to_the_terminal_and_clears_what_a_longer_line_left()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        using (var progress = new ConsoleProgress(100, 0, null, output, interactive: true, null, clock.Read) { TerminalColumns = 100 })
        {
            clock.Now = TimeSpan.FromSeconds(1);
            progress.Update(10, 2.5, 64);
            string first = output.ToString().Split('\r')[^1];
            Assert.Matches(@"^\[===+> +\] 10/100 10\.0% \| loss 2\.5000 \| 64\.0 seq/s \| 0:00:01<0:00:09$", first);
            Assert.Equal(99, first.Length);
            progress.TerminalColumns = 40;   // narrower: the bar goes, the status is cut to 39 columns, the rest blanked
            clock.Now = TimeSpan.FromSeconds(2);
            progress.Update(20);
            string second = output.ToString().Split('\r')[^1];
            Assert.Equal(first.Length, second.Length);
            Assert.Equal("20/100 20.0% | loss 2.5000 | 64.0 seq/s", second.TrimEnd());
            progress.WriteLine("eval: val_loss 2.0");
        }
        string text = output.ToString();
        Assert.Contains("\r" + new string(' ', 39) + "\reval: val_loss 2.0" + Environment.NewLine, text);
        Assert.EndsWith(Environment.NewLine, text);
    }

    [Fact]
    public void Durations_format_as_hours_minutes_seconds()
    {
        Assert.Equal("0:00:05", ConsoleProgress.Duration(TimeSpan.FromSeconds(5.9)));
        Assert.Equal("12:34:56", ConsoleProgress.Duration(new TimeSpan(12, 34, 56)));
        Assert.Equal("2d03:04:05", ConsoleProgress.Duration(new TimeSpan(2, 3, 4, 5)));
    }
}
