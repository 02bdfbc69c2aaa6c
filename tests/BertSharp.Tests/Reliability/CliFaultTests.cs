using BertSharp.Training;
using Xunit.Abstractions;

namespace BertSharp.Tests.Reliability;

/// <summary>What the user sees when the disk fills during `bert pretrain`: one line, exit code 1, no stack trace,
/// and the run folder left without partial checkpoints.</summary>
public class CliFaultTests(ITestOutputHelper log)
{
    [TmpfsFact]
    public void Bert_pretrain_on_a_disk_that_fills_up_prints_one_line_naming_the_path()
    {
        var dir = TestPaths.TempDir("cli-full");
        var corpus = TinyPretraining.Corpus(dir);
        // 4 MB: room for the run folder and the first best model (1.8 MB), not for a checkpoint (5.4 MB) as well.
        using var tmpfs = new FileSystemFaults.Tmpfs(4 << 20);
        var output = Path.Combine(tmpfs.Path, "run");
        var err = new StringWriter();
        int code = BertSharp.Cli.Cli.Run(new[]
        {
            "pretrain", "--corpus", corpus, "--output", output, "--model-preset", "seed", "--vocab-size", "120",
            "--max-seq-length", "32", "--batch-size", "8", "--max-steps", "4", "--eval-every", "2", "--max-eval-examples", "16",
        }, new StringWriter(), err);
        var last = err.ToString().TrimEnd().Split('\n')[^1];
        log.WriteLine(last);
        Assert.Equal(1, code);
        Assert.StartsWith("error: step 2: ", last);
        Assert.Contains(output, last);
        Assert.Contains("No space left on device", last);
        Assert.DoesNotContain("   at ", err.ToString());
        var checkpoint = new RunFolder(output).LastCheckpoint;
        Assert.False(Directory.Exists(checkpoint + ".new"));
        Assert.False(Directory.Exists(Path.Combine(output, ".model.new")));
        Assert.Null(RunFolder.FindCheckpoint(checkpoint));
    }
}
